"""Which float precision to compute in: bf16 only where the hardware computes it natively, fp32 elsewhere.

Why: bf16 under autocast is ~5x faster than fp32 on CPUs with AVX512-BF16/AMX, but on AVX2-only CPUs oneDNN
emulates it and a bf16 matmul ran ~50x slower than fp32 (1.0 vs 58 GFLOP/s, issue #10). So `auto` asks the hardware:

- CUDA: bf16 when `torch.cuda.is_bf16_supported()`, else fp32 (certain either way);
- CPU: oneDNN says no (`torch.ops.mkldnn._is_mkldnn_bf16_supported()` is False) -> fp32 (certain); the CPU flags
  name bf16 units (`avx512_bf16`, `amx_bf16`) -> bf16 (certain); otherwise oneDNN would *emulate* bf16 on AVX-512
  (uncertain), and a sub-second probe times a matmul in both precisions and takes the faster.

`resolve_precision` also measures the matmul peak (GFLOP/s) of the chosen precision, so a run can say how close to
the machine it got. An explicit `bf16`/`fp32` always wins, with a warning when it is the slower one here.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import asdict, dataclass

import torch

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp32")
NATIVE_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
FORCE_ENV = "NOTELLM_BF16_SUPPORT"


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run computes in, why, and the measured matmul peak of that precision on this device."""

    name: str  # "bf16" | "fp32"
    requested: str  # "auto" | "bf16" | "fp32"
    device: str  # "cpu" | "cuda"
    support: str  # bf16 support found: "native" | "none" | "faster" | "slower" (the last two: probed)
    reason: str
    peak_gflops: float | None  # matmul GFLOP/s in `name` (None when not measured)

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.bf16 else torch.float32

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        peak = f", matmul peak {self.peak_gflops:.0f} GFLOP/s" if self.peak_gflops else ""
        return f"{self.name} on {self.device} ({self.reason}{peak})"


def _cpu_flags() -> set[str]:
    from notellm.machine import cpu_flags

    return set(cpu_flags())


def bf16_support(device: str = "cpu") -> str:
    """'native' (computed in bf16 units), 'none' (not supported / emulated so slowly it is useless) or 'uncertain'.

    The environment variable NOTELLM_BF16_SUPPORT (native | none | uncertain) overrides the answer: for a CPU that
    misreports, and so the test suite computes the same numbers on every machine."""
    forced = os.environ.get(FORCE_ENV, "").strip().lower()
    if forced:
        if forced not in ("native", "none", "uncertain"):
            raise ValueError(f"{FORCE_ENV} must be native, none or uncertain, got {forced!r}")
        return forced
    if device == "cuda":
        return "native" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "none"
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "none"
    if _cpu_flags() & set(NATIVE_CPU_FLAGS):
        return "native"
    return "uncertain"


def _seconds_per_matmul(dtype: torch.dtype, device: str, size: int = 384, reps: int = 3) -> float:
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def probe_bf16_faster(device: str = "cpu") -> bool:
    """Time a small matmul in bf16 and fp32 (well under a second) and say whether bf16 won."""
    return _seconds_per_matmul(torch.bfloat16, device) < _seconds_per_matmul(torch.float32, device)


@functools.lru_cache(maxsize=8)
def matmul_peak(dtype: torch.dtype, device: str = "cpu", seconds: float = 0.3) -> float:
    """Best GFLOP/s of a 1024² matmul in `dtype` over `seconds` (short: it is printed with every run). Measured once
    per process and dtype: every encoder and run of a process reports the same figure instead of paying again."""
    if device == "cpu":
        from notellm.machine import matmul_gflops

        return matmul_gflops(dtype, size=1024, seconds=seconds)
    size = 4096
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.matmul(a, b)
    torch.cuda.synchronize()
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        torch.matmul(a, b)
        torch.cuda.synchronize()
        best = max(best, 2 * size**3 / (time.perf_counter() - t0) / 1e9)
    return best


def resolve_precision(requested: str = "auto", device: str | None = None, measure_peak: bool = True,
                      what: str = "") -> PrecisionChoice:
    """The precision to run in on `device` (default: CUDA if present, else CPU). See the module docstring."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    support = bf16_support(device)
    if support == "uncertain":
        support = "faster" if probe_bf16_faster(device) else "slower"
    fast = "bf16" if support in ("native", "faster") else "fp32"
    reasons = {"native": "bf16 computed natively", "none": "no native bf16",
               "faster": "bf16 probed faster than fp32", "slower": "bf16 probed slower than fp32"}
    if requested == "auto":
        name, reason = fast, f"auto: {reasons[support]}"
    else:
        name, reason = requested, f"asked for; {reasons[support]}"
        if requested != fast:
            logger.warning("%sprecision=%s was asked for, but %s is faster on this %s (%s)",
                           f"{what}: " if what else "", requested, fast, device, reasons[support])
    peak = matmul_peak(torch.bfloat16 if name == "bf16" else torch.float32, device) if measure_peak else None
    choice = PrecisionChoice(name=name, requested=requested, device=device, support=support, reason=reason,
                             peak_gflops=peak)
    logger.info("%sprecision: %s", f"{what}: " if what else "", choice.describe())
    return choice


def inference_dtype(requested: str = "auto", device: str | None = None) -> torch.dtype:
    """The dtype to hold inference weights in (bf16 where native, else fp32); no peak measured."""
    return resolve_precision(requested, device, measure_peak=False).dtype
