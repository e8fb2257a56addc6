"""Benchmark NoteLLM note embedding on this CPU: notes/s of the default SmolLM2-135M model, fp32 vs bf16 (autocast
and bf16 weights) at several batch sizes, on real Stack Exchange questions; the machine's fp32/bf16 matmul peak; the
first load of SmolLM2 from GGUF (conversion) and a cached load.

    PYTHONPATH=. python bench/bench_embed.py --notes 256 --batch-sizes 8,32 --out bench/results/bench_embed.json
    PYTHONPATH=. python bench/bench_embed.py --notes 64 --batch-sizes 32 --modes auto --threads 1 --skip-conversion

Modes: fp32, bf16-autocast, bf16-weights, `auto` (what notellm.precision picks here, as the quickstart embeds), and
`<mode>-noprefix` (the shared prompt prefix recomputed per row, for comparison). Each row's GFLOP/s is also given
as a fraction of the measured matmul peak of the precision it computes in; with the shared prefix the tokens of
the prefix are still counted for every row (an "equivalent" GFLOP/s: the work a plain forward would do).

Conversion is timed into a temporary cache dir, so the user's cache is left alone. The machine may be shared: the
load average at start and end is recorded beside the numbers, and throughput is a lower bound when it was high.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

from notellm.data.schema import Note
from notellm.data.stackexchange import html_to_text, parse_tags, site_name
from notellm.machine import cpu_flags, cpu_model, matmul_gflops  # noqa: E402
from notellm.model.backbone import convert_gguf, load_causal_lm, load_tokenizer, packaged_gguf, resolve_backbone
from notellm.model.notellm import NoteLLM, NoteLLMConfig

DATA = (
    Path(os.environ.get("NOTELLM_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data" / "stackexchange"
)


def stackexchange_notes(n: int, data_dir: Path = DATA) -> list[Note]:
    """Up to `n` questions, round-robin over the sites, parsed straight from Posts.xml (title, text, tags, site)."""
    per_site: list[list[Note]] = []
    for site_dir in sorted(p for p in data_dir.iterdir() if (p / "Posts.xml").is_file()):
        site, notes = site_name(site_dir), []
        for _, row in ET.iterparse(site_dir / "Posts.xml"):
            if row.tag == "row" and row.get("PostTypeId") == "1":
                notes.append(
                    Note(
                        f"{site}:{row.get('Id')}",
                        row.get("Title", ""),
                        html_to_text(row.get("Body")),
                        tuple(parse_tags(row.get("Tags"))),
                        site,
                    )
                )
                if len(notes) >= n:
                    break
        per_site.append(notes)
    mixed = [note for group in zip(*per_site) for note in group] if per_site else []
    if len(mixed) < n:
        mixed += [note for group in per_site for note in group if note not in mixed][: n - len(mixed)]
    return mixed[:n]


def time_loads(skip_conversion: bool) -> dict:
    """Seconds for the GGUF -> safetensors conversion (into a temp dir) and for loads from a converted cache."""
    out: dict = {}
    if not skip_conversion:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            convert_gguf(packaged_gguf("smollm2-135m"), Path(tmp) / "smollm2-135m")
            out["gguf_conversion_s"] = round(time.perf_counter() - t0, 2)
    path = resolve_backbone("smollm2-135m")  # the user's cache (converted now if it was missing)
    load_causal_lm(path)  # warm imports and the page cache once
    t0 = time.perf_counter()
    load_causal_lm(path)
    load_tokenizer(path)
    out["cached_load_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    NoteLLM.from_backbone(NoteLLMConfig())
    out["cached_from_backbone_s"] = round(time.perf_counter() - t0, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=256, help="number of Stack Exchange questions to embed")
    parser.add_argument("--batch-sizes", default="8,32")
    parser.add_argument("--modes", default="fp32,bf16-autocast,bf16-weights")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--skip-conversion", action="store_true", help="do not time the GGUF conversion")
    parser.add_argument("--out", default="bench/results/bench_embed.json")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest ops of one more batch per row")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from notellm.precision import resolve_precision

    auto = resolve_precision("auto", "cpu", measure_peak=False).name
    load_start = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    # the bf16 peak only when a bf16 mode runs (emulated bf16 on an AVX2 CPU takes ~1 GFLOP/s: minutes)
    wants_bf16 = any(m.startswith("bf16") or (m.startswith("auto") and auto == "bf16") for m in args.modes.split(","))
    peaks = {
        name: round(matmul_gflops(dtype, args.matmul_size), 1)
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)) if name == "fp32" or wants_bf16
    }
    loads = time_loads(args.skip_conversion)

    notes = stackexchange_notes(args.notes)
    models = {"fp32": NoteLLM.from_backbone(NoteLLMConfig())}
    tokens = sum(len(models["fp32"].prompt_builder.embedding_ids(n)) for n in notes)
    lm_cfg = models["fp32"].causal_lm.config
    # FLOPs per token of the forward pass: 2 x non-embedding parameters (attention scores are small at ~170 tokens).
    dense_params = sum(p.numel() for name, p in models["fp32"].causal_lm.model.layers.named_parameters())
    flops_per_token = 2 * dense_params
    rows = []
    for mode in args.modes.split(","):
        share = not mode.endswith("-noprefix")
        kind = mode.removesuffix("-noprefix")
        kind = {"auto": "bf16-weights" if auto == "bf16" else "fp32"}.get(kind, kind)
        if kind == "bf16-weights" and kind not in models:
            models[kind] = NoteLLM.from_backbone(NoteLLMConfig(), dtype=torch.bfloat16)
        model = models.get(kind, models["fp32"])
        autocast = kind == "bf16-autocast"
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            ids = [model.prompt_builder.embedding_ids(n) for n in notes]
            model.embed_ids(ids[: min(bs, len(notes))], batch_size=bs, autocast=autocast, share_prefix=share)  # warm
            t0 = time.perf_counter()
            vectors = model.embed_ids(ids, batch_size=bs, autocast=autocast, share_prefix=share)
            seconds = time.perf_counter() - t0
            reference = models["fp32"].embed(notes[:16], batch_size=16) if mode != "fp32" else vectors[:16]
            rows.append(
                {
                    "mode": mode,
                    "batch_size": bs,
                    "seconds": round(seconds, 2),
                    "notes_per_s": round(len(notes) / seconds, 1),
                    "tokens_per_s": round(tokens / seconds, 0),
                    "gflops": round(tokens * flops_per_token / seconds / 1e9, 1),
                    "precision": "fp32" if kind == "fp32" else "bf16",
                    "fraction_of_peak": round(tokens * flops_per_token / seconds / 1e9
                                              / peaks["fp32" if kind == "fp32" else "bf16"], 3),
                    "min_cos_vs_fp32": round(float((vectors[:16] * reference).sum(1).min()), 5),
                }
            )
            print(f"  {mode} batch {bs}: {rows[-1]['notes_per_s']} notes/s", flush=True)
            if args.profile:  # where one more batch's time goes
                from torch.profiler import ProfilerActivity, profile

                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    model.embed_ids(ids[:bs], batch_size=bs, autocast=autocast, share_prefix=share)
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile))
    result = {
        "command": " ".join([sys.executable, *sys.argv]),
        "started": started,
        "nproc": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "torch": torch.__version__,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "note": "shared machine (other engineers' jobs were running): throughput figures are lower bounds",
        "model": "smollm2-135m",
        "layers": lm_cfg.num_hidden_layers,
        "hidden": lm_cfg.hidden_size,
        "n_notes": len(notes),
        "mean_tokens_per_note": round(tokens / len(notes), 1),
        "matmul_peak_gflops": peaks,
        "matmul_size": args.matmul_size,
        "loads": loads,
        "rows": rows,
    }
    print(f"{'mode':<22} {'batch':>5} {'notes/s':>9} {'tokens/s':>10} {'GFLOP/s':>9} {'of peak':>8} {'min cos':>8}")
    for r in rows:
        print(
            f"{r['mode']:<22} {r['batch_size']:>5} {r['notes_per_s']:>9.1f} {r['tokens_per_s']:>10.0f} "
            f"{r['gflops']:>9.1f} {r['fraction_of_peak']:>8.1%} {r['min_cos_vs_fp32']:>8.5f}"
        )
    print(f"matmul peak {args.matmul_size}^2: {peaks} GFLOP/s")
    print(f"loads: {loads}")
    print(
        f"{len(notes)} notes, {result['mean_tokens_per_note']} tokens/note; nproc {result['nproc']}, "
        f"{result['cpu']}; loadavg start {load_start} end {result['loadavg_end']} (shared machine)"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
