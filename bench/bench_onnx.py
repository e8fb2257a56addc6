"""Benchmark the embedding runtimes side by side: PyTorch eager (fp32, and bf16 where the CPU has native bf16),
ONNX Runtime fp32 and ONNX Runtime int8 (--scheme) — same process, same notes, same threads, batch 1, 8 and 32.

    PYTHONPATH=. flock /tmp/notellm-heavy.lock python bench/bench_onnx.py --model /tmp/smol --notes 64 \
        --workdir /tmp/notellm-bench-onnx --out bench/results/bench_onnx.json

--model is a saved NoteLLM folder (default: an untrained NoteLLM on SmolLM2-135M, saved into the workdir); the
fp32 export is written into the workdir by `export_onnx` and the int8 one quantised from it (`onnx-fp32`,
`onnx-<scheme>`: the names bench_quantize.py uses, so its exports are reused). PyTorch runs its production path
(`NoteLLM.embed`: batches longer than one compute their shared prompt prefix once). Notes are real Stack Exchange
questions. Each runtime's embeddings are also compared with PyTorch fp32 (max |pairwise cosine difference|), so a
fast number never hides a wrong one. The machine may be shared: load averages are recorded with the figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embed import stackexchange_notes  # noqa: E402
from serve_setup import command_line, machine, save_model  # noqa: E402

from notellm.export import OnnxEncoder, OnnxExportConfig, export_onnx  # noqa: E402
from notellm.export.onnx import compare_embeddings, quantize_export  # noqa: E402
from notellm.export.quantize import DEFAULT_SCHEME, SCHEMES  # noqa: E402
from notellm.machine import cpu_flags  # noqa: E402
from notellm.model.notellm import NoteLLM  # noqa: E402
from notellm.retrieval.encode import NoteLLMEncoder  # noqa: E402


def has_native_bf16() -> bool:
    return any(f in cpu_flags() for f in ("avx512_bf16", "amx_bf16"))


def exported(model: NoteLLM, notes, workdir: Path, scheme: str | None) -> Path:
    """The fp32 export (scheme None) or the int8 one quantised from it; reused when the workdir has them."""
    fp32 = workdir / "onnx-fp32"
    out = fp32 if scheme is None else workdir / f"onnx-{scheme}"
    if not (out / "notellm_onnx.json").is_file():
        t = time.perf_counter()
        if scheme is None:
            export_onnx(model, notes, out, OnnxExportConfig(), overwrite=True)
        else:
            quantize_export(exported(model, notes, workdir, None), notes, out,
                            OnnxExportConfig(quantize="int8", scheme=SCHEMES[scheme]), overwrite=True)
        print(f"exported {out} in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def notes_per_second(encoder, notes, batch_size: int, repeats: int) -> tuple[float, np.ndarray]:
    encoder.batch_size = batch_size
    encoder.encode(notes[:batch_size])  # warm-up: first-call allocations, ORT's kernel choice
    best, vectors = 0.0, None
    for _ in range(repeats):
        t = time.perf_counter()
        vectors = encoder.encode(notes)
        best = max(best, len(notes) / (time.perf_counter() - t))
    return best, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="saved NoteLLM folder (default: untrained SmolLM2)")
    parser.add_argument("--notes", type=int, default=64)
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--repeats", type=int, default=1, help="timed passes per cell (the best is kept)")
    parser.add_argument("--threads", type=int, default=None, help="threads for both runtimes (default: torch's)")
    parser.add_argument("--runtimes", default="torch-fp32,torch-bf16,onnx-fp32,onnx-int8")
    parser.add_argument("--scheme", default=DEFAULT_SCHEME, choices=list(SCHEMES), help="the onnx-int8 scheme")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "notellm-bench-onnx")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_onnx.json")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    load_start = os.getloadavg()

    model_dir = args.model or save_model("smollm2-135m", args.workdir)
    model = NoteLLM.from_pretrained(model_dir).eval()
    notes = stackexchange_notes(args.notes)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    wanted = args.runtimes.split(",")
    encoders, skipped = {}, {}
    if "torch-fp32" in wanted:
        encoders["torch-fp32"] = NoteLLMEncoder(model, precision="fp32")
    if "torch-bf16" in wanted:
        if has_native_bf16():
            encoders["torch-bf16"] = NoteLLMEncoder(copy.deepcopy(model), precision="bf16")  # casts its copy
        else:
            skipped["torch-bf16"] = ("this CPU has no native bf16 (avx512_bf16 / amx_bf16): emulated bf16 is slower "
                                     "than fp32, and `precision auto` picks fp32 here")
            print(f"torch bf16 skipped: {skipped['torch-bf16']}")
    for scheme, name in ((None, "onnx-fp32"), (args.scheme, "onnx-int8")):
        if name in wanted:
            encoders[name] = OnnxEncoder(exported(model, notes, args.workdir, scheme), threads=threads)

    rows, reference = [], None
    for name, encoder in encoders.items():
        for bs in batch_sizes:
            load = os.getloadavg()[0]
            rate, vectors = notes_per_second(encoder, notes, bs, args.repeats)
            if name == "torch-fp32" and reference is None:
                reference = vectors
            diff = compare_embeddings(reference, vectors) if reference is not None else {}
            row = {"runtime": name, "batch_size": bs, "notes_per_s": round(rate, 2), "loadavg_1m": round(load, 2),
                   "max_abs_cosine_diff_vs_torch_fp32": diff.get("max_abs_pairwise_cosine_diff")}
            rows.append(row)
            print(json.dumps(row), flush=True)
    load_end = os.getloadavg()
    result = {
        "benchmark": "onnx", "command": command_line(), "machine": machine(), "threads": threads,
        "cpu_flags": cpu_flags(), "model": str(model_dir), "notes": len(notes), "int8_scheme": args.scheme,
        "skipped": skipped,
        "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in load_end],
        "note": "shared machine: other users' jobs ran beside this one; see the load averages", "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"\nnotes/s, {len(notes)} Stack Exchange notes, {threads} threads, {machine()['cpu']}; "
          f"load average {load_start[0]:.2f} -> {load_end[0]:.2f}")
    print(f"{'runtime':<12}" + "".join(f"{'batch ' + str(b):>11}" for b in batch_sizes) + f"{'max |Δcos|':>12}")
    for name in encoders:
        cells = [r for r in rows if r["runtime"] == name]
        worst = max((r["max_abs_cosine_diff_vs_torch_fp32"] or 0.0) for r in cells)
        print(f"{name:<12}" + "".join(f"{r['notes_per_s']:>11}" for r in cells) + f"{worst:>12.1e}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
