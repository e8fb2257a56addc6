"""What every benchmark records about the machine it ran on: CPU model and flags, and the measured matmul peak.

Shared by the benchmarks in bench/ and by the reports, which record where their figures were measured.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path


def _cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name (e.g. 'AMD EPYC')."""
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The vector-unit flags that matter for matmul speed (AVX2/AVX-512/AMX/FMA)."""
    flags = (_cpuinfo_field("flags") or "").split()
    return sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma")))


def matmul_gflops(dtype, size: int = 2048, seconds: float = 2.0) -> float:
    """Best sustained GFLOP/s of a (size × size) @ (size × size) torch matmul in `dtype`, looped for `seconds`."""
    import torch

    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    torch.matmul(a, b)  # warm-up (thread pool, kernels)
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - t0) / 1e9)
    return best
