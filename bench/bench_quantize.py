"""Which int8 scheme keeps retrieval quality, and how fast is each? One fp32 export, every scheme quantised from it.

    PYTHONPATH=. flock /tmp/notellm-heavy.lock python bench/bench_quantize.py --model RUN/model \
        --data RUN/data --workdir /tmp/notellm-quant --stage screen      # cosines + notes/s, all schemes (fast)
    PYTHONPATH=. flock /tmp/notellm-heavy.lock python bench/bench_quantize.py --model RUN/model \
        --data RUN/data --workdir /tmp/notellm-quant --stage recall --schemes dynamic,dynamic-pc-nodown

Per scheme (export/quantize.py `SCHEMES`): the int8 graph is checked against the fp32 export on `--check-notes`
notes of the data (max |pairwise cosine difference|, mean self-cosine), timed at `--batch-size` on the same notes
(notes/s, best of `--repeats`), and with `--stage recall` scored on the data folder's test pool: paper-rule
Recall@10 and R@avg against the fp32 export's (which reproduces PyTorch fp32 to 1e-4 in cosine: `export_onnx`'s
check), with paired-bootstrap 95% intervals of each difference and the pool's embedding time as a second speed
figure (batch 32, every pool note).
Results accumulate in --out (one JSON, one entry per scheme and stage), so the stages can run in separate short
locked runs. The machine may be shared: load averages are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_onnx import notes_per_second  # noqa: E402
from serve_setup import command_line, machine  # noqa: E402

from notellm.data.store import frame_to_notes, load_notes  # noqa: E402
from notellm.export import OnnxEncoder, OnnxExportConfig, export_onnx  # noqa: E402
from notellm.export.onnx import compare_embeddings, quantize_export, select_check_notes  # noqa: E402
from notellm.export.quality import compare_results, pool_result  # noqa: E402
from notellm.export.quantize import SCHEMES  # noqa: E402
from notellm.export.runtime import read_meta  # noqa: E402
from notellm.machine import cpu_flags  # noqa: E402


def fp32_export(model_dir: Path, notes, workdir: Path, check_notes: int) -> Path:
    out = workdir / "onnx-fp32"
    if not (out / "notellm_onnx.json").is_file():
        from notellm.model.notellm import NoteLLM

        t = time.perf_counter()
        export_onnx(NoteLLM.from_pretrained(model_dir).eval(), notes, out,
                    OnnxExportConfig(check_notes=check_notes), overwrite=True)
        print(f"exported {out} in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def _pool_key(fp32_dir: Path, data: Path) -> dict:
    graph, splits = (fp32_dir / "model.onnx").stat(), (data / "note_splits.parquet").stat()
    return {"fp32": str(fp32_dir.resolve()), "graph": [graph.st_size, graph.st_mtime_ns],
            "data": str(data.resolve()), "splits": [splits.st_size, splits.st_mtime_ns]}


def cached_pool_result(workdir: Path, fp32_dir: Path, data: Path) -> dict | None:
    """The fp32 export's test-pool ranks from an earlier recall run on the same export and data (the reference
    every scheme is compared with: scoring it once lets the schemes run in separate short locked runs)."""
    path = workdir / "pool-fp32.json"
    if not path.is_file():
        return None
    cached = json.loads(path.read_text())
    return cached["raw"] | {"pool_s": cached["pool_s"]} if cached["key"] == _pool_key(fp32_dir, data) else None


def save_pool_result(workdir: Path, fp32_dir: Path, data: Path, raw: dict, pool_s: float) -> None:
    (workdir / "pool-fp32.json").write_text(json.dumps({"key": _pool_key(fp32_dir, data), "pool_s": pool_s,
                                                        "raw": raw}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="saved (trained) NoteLLM folder")
    parser.add_argument("--data", type=Path, required=True, help="mined data folder (its test pool is scored)")
    parser.add_argument("--workdir", type=Path, required=True, help="exports are written (and reused) here")
    parser.add_argument("--stage", choices=["screen", "recall"], default="screen")
    parser.add_argument("--schemes", default=",".join(SCHEMES), help=f"comma-separated subset of {list(SCHEMES)}")
    parser.add_argument("--check-notes", type=int, default=32, help="notes each scheme is checked and timed on")
    parser.add_argument("--export-check-notes", type=int, default=8,
                        help="notes the fp32 export is checked on against PyTorch (PyTorch fp32 is the slow part)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_quantize.json")
    args = parser.parse_args()
    schemes = [s for s in args.schemes.split(",") if s]
    unknown = set(schemes) - set(SCHEMES)
    if unknown:
        parser.error(f"unknown schemes {sorted(unknown)}; choose from {list(SCHEMES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    args.workdir.mkdir(parents=True, exist_ok=True)
    result = json.loads(args.out.read_text()) if args.out.is_file() else {"benchmark": "quantize", "runs": []}
    load_start = os.getloadavg()

    notes = frame_to_notes(load_notes(args.data))
    check = select_check_notes(notes, args.check_notes, seed=0)
    fp32_dir = fp32_export(args.model, notes, args.workdir, args.export_check_notes)
    fp32 = OnnxEncoder(fp32_dir, threads=threads)
    entries = []
    reference = None
    for name in ["fp32", *schemes]:
        t = time.perf_counter()
        if name == "fp32":
            folder, encoder = fp32_dir, fp32
        else:
            folder = args.workdir / f"onnx-{name}"
            if not (folder / "notellm_onnx.json").is_file():
                # gate -1 (any cosine): the bench measures every scheme's error instead of refusing it
                quantize_export(fp32_dir, notes, folder, OnnxExportConfig(
                    quantize="int8", scheme=SCHEMES[name], check_notes=args.check_notes,
                    int8_min_mean_self_cosine=-1.0), overwrite=True)
            encoder = OnnxEncoder(folder, threads=threads)
        quantize_s = time.perf_counter() - t
        load = os.getloadavg()[0]
        entry = {"scheme": name, "stage": args.stage, "loadavg_1m": round(load, 2),
                 "model_mb": round((folder / "model.onnx").stat().st_size / 2**20, 1)}
        if args.stage == "screen":
            rate, vectors = notes_per_second(encoder, check, args.batch_size, args.repeats)
            reference = vectors if name == "fp32" else reference
            entry |= {"quantize_s": round(quantize_s, 1), "notes_per_s": round(rate, 2),
                      "batch_size": args.batch_size, **compare_embeddings(reference, vectors)}
        else:
            if name != "fp32":  # the int8 graph's check against the fp32 export, made when it was quantised
                check_fig = read_meta(folder)["check"]
                entry |= {k: check_fig[k] for k in ("notes", "max_abs_pairwise_cosine_diff", "mean_self_cosine")}
            t = time.perf_counter()
            cached = cached_pool_result(args.workdir, fp32_dir, args.data) if name == "fp32" else None
            raw = cached or pool_result(encoder, args.data)
            pool_s = cached["pool_s"] if cached else time.perf_counter() - t
            if name == "fp32" and not cached:
                save_pool_result(args.workdir, fp32_dir, args.data, raw, pool_s)
            entry["fp32_pool_cached"] = bool(cached)
            reference = raw if name == "fp32" else reference
            cmp = compare_results("onnx fp32", reference, f"onnx {name}", raw)
            entry |= {"recall10": round(cmp.recall10_candidate, 2), "recall_avg": round(cmp.recall_avg_candidate, 2),
                      "recall10_diff_ci": [round(x, 2) for x in cmp.recall10_diff_ci],
                      "recall_avg_diff_ci": [round(x, 2) for x in cmp.recall_avg_diff_ci],
                      "queries": cmp.queries, "pool": cmp.pool_size,
                      "pool_notes_per_s": round(cmp.pool_size / pool_s, 2), "batch_size": encoder.batch_size}
        entry["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
        print(json.dumps(entry), flush=True)
        entries.append(entry)

    result["runs"].append({
        "command": command_line(), "machine": machine(), "cpu_flags": cpu_flags(), "threads": threads,
        "model": str(args.model), "data": str(args.data), "check_notes": len(check),
        "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "entries": entries,
    })
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    base = next(e for e in entries if e["scheme"] == "fp32")
    for e in entries:
        if args.stage == "screen":
            print(f"{e['scheme']:<20} {e['notes_per_s']:>7} notes/s  x{e['notes_per_s'] / base['notes_per_s']:.2f}  "
                  f"max|dcos| {e['max_abs_pairwise_cosine_diff']:.3f}  self-cos {e['mean_self_cosine']:.4f}  "
                  f"{e['model_mb']} MB")
        else:
            print(f"{e['scheme']:<20} Recall@10 {e['recall10']:.2f} ({e['recall10'] - base['recall10']:+.2f}, "
                  f"CI {e['recall10_diff_ci'][0]:+.2f} to {e['recall10_diff_ci'][1]:+.2f}), R@avg "
                  f"{e['recall_avg']:.2f} ({e['recall_avg'] - base['recall_avg']:+.2f}, CI "
                  f"{e['recall_avg_diff_ci'][0]:+.2f} to {e['recall_avg_diff_ci'][1]:+.2f}), "
                  f"pool embedded at {e['pool_notes_per_s']} notes/s (batch {e['batch_size']})")
    print(f"load average {load_start[0]:.2f} -> {os.getloadavg()[0]:.2f}; wrote {args.out}")


if __name__ == "__main__":
    main()
