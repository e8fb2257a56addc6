"""Training throughput of NoteLLM per mode on this CPU, in the precision `auto` picks (or --precision), as a
fraction of the measured matmul peak of that precision; 1 or 2 threads (--threads).

    PYTHONPATH=. python bench/bench_train.py --data /tmp/se-data --steps 3 --out bench/results/train.json
    PYTHONPATH=. python bench/bench_train.py --data D --modes full,top_n,top_n_cached --threads 1

Modes: full, lora, top_n (bottom layers recomputed every step) and top_n_cached (model/frozen_cache.py): its steps
are timed twice over the same batches, first filling the cache (every input a miss: what one epoch's new inputs
cost) and then reading it (every input a hit: a note's second appearance, later epochs, validation).

FLOP formula (stated, not measured by a profiler): per step, with T real (non-pad) tokens and S supervised tokens,
    forward      2 · N_body · T            + 2 · V·H · S     (LM head only at supervised positions)
    backward     2 · N_act  · T            + 2 · V·H · S     (activation gradients through the layers below the top
                                                            trainable one; the head when CSFT is on)
    weight grads 2 · N_wgrad · T           (+ 2 · V·H · S if the tied head/embedding trains)
N_body = decoder parameters without the embedding table (a lookup costs no FLOPs); attention-score FLOPs
(~4·L·T·ctx·H) are left out (≈1% at these ~150-token sequences). For `full` this is the usual 6·N·T.
Achieved FLOP/s = FLOPs / step time; MFU = achieved / measured matmul peak of the precision used (torch.matmul,
2048²). For top_n_cached on hits the bottom layers' forward is not computed; the same FLOP formula is kept so the
figure reads as "equivalent" FLOP/s (it can exceed the peak).
Other engineers share this machine's cores: the load average at start and end is printed and stored.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from notellm.machine import cpu_flags, cpu_model, matmul_gflops  # noqa: E402


def _layer_params(layer) -> int:
    return sum(p.numel() for p in layer.parameters())


def flops_per_step(model, mode: str, top_n: int, tokens: int, supervised: int) -> float:
    lm = model.causal_lm
    layers = lm.get_decoder().layers
    hidden = lm.config.get_text_config().hidden_size
    vocab = lm.get_input_embeddings().weight.shape[0]
    body = sum(_layer_params(layer) for layer in layers)
    if mode == "full":
        act, wgrad, head_wgrad = body, body, True
    elif mode == "lora":
        act = body
        wgrad = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "lora_" in n)
        head_wgrad = False
    else:
        act = wgrad = sum(_layer_params(layer) for layer in layers[len(layers) - top_n :])
        head_wgrad = False
    head = 2 * vocab * hidden * supervised
    return 2 * body * tokens + head + 2 * act * tokens + head + 2 * wgrad * tokens + (head if head_wgrad else 0)


def load_pairs(data_dir: Path, n: int):
    from notellm.train.data import load_pair_data

    data = load_pair_data(data_dir, "train")
    return [(data.notes[a], data.notes[b]) for a, b in data.pairs[:n]]


def bench_mode(mode: str, args, pairs, bf16: bool) -> dict | list[dict]:
    from notellm.model.collate import PairCollator
    from notellm.model.frozen_cache import FrozenLayerCache
    from notellm.model.notellm import NoteLLM, NoteLLMConfig
    from notellm.train.config import TrainArgs
    from notellm.train.modes import apply_mode, count_parameters
    from notellm.train.step import plain_step, supervised_tokens

    cached = mode == "top_n_cached"
    base_mode = "top_n" if cached else mode
    targs = TrainArgs(mode=base_mode, top_n_layers=args.top_n)
    model = NoteLLM.from_backbone(NoteLLMConfig(backbone=args.backbone), dtype=torch.float32)
    apply_mode(model, targs)
    if cached:
        model.frozen_cache = FrozenLayerCache(len(model.causal_lm.get_decoder().layers) - args.top_n, max_mb=4096)
    trainable, total = count_parameters(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, fused=True)
    collator = PairCollator(model.prompt_builder, hashtag_ratio=0.4, seed=0)
    model.train()

    def timed_pass(first_step: int) -> tuple[float, int, int]:
        times, tokens, supervised = [], 0, 0
        for step in range(first_step, args.steps + 1):  # step 0 is warm-up
            batch = collator.collate(pairs[step * args.batch_pairs : (step + 1) * args.batch_pairs], step)
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                plain_step(model, model, batch, True, 0.01, lambda loss: loss.backward())
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step:
                times.append(time.perf_counter() - start)
                tokens += int(batch.attention_mask.sum())
                supervised += supervised_tokens(batch)
        return sum(times), tokens, supervised

    passes = [("top_n_cached (misses)", timed_pass(0)), ("top_n_cached (hits)", timed_pass(1))] if cached else \
        [(mode, timed_pass(0))]
    if args.profile:  # where one more step's time goes (the cached mode: a step of hits)
        from torch.profiler import ProfilerActivity, profile

        batch = collator.collate(pairs[args.batch_pairs : 2 * args.batch_pairs], 1)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                plain_step(model, model, batch, True, 0.01, lambda loss: loss.backward())
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        print(f"profile of one {mode} step (self CPU time):")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile))
    return [_row(label, model, base_mode, args, trainable, total, *measured) for label, measured in passes]


def _row(mode, model, base_mode, args, trainable, total, seconds, tokens, supervised) -> dict:
    sequences = 2 * args.batch_pairs * args.steps
    flops = flops_per_step(model, base_mode, args.top_n, tokens, supervised)  # summed over the timed steps
    return {
        "mode": mode,
        "trainable_params": trainable,
        "total_params": total,
        "step_s": seconds / args.steps,
        "sequences_per_s": sequences / seconds,
        "pairs_per_s": args.batch_pairs * args.steps / seconds,
        "tokens_per_s": tokens / seconds,
        "flop_per_s": flops / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="data folder (notellm import + mine)")
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--modes", default="full,lora,top_n")
    parser.add_argument("--batch-pairs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode (after one warm-up step)")
    parser.add_argument("--top-n", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("bench/results/train.json"))
    parser.add_argument("--precision", default="auto", help="auto | bf16 | fp32 (notellm/precision.py)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest ops of one more step per mode")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from notellm.precision import resolve_precision

    choice = resolve_precision(args.precision, "cpu", measure_peak=False)

    load_start = os.getloadavg()
    machine = {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    # FLOP/s; the bf16 peak only where bf16 is used (emulated bf16 on an AVX2 CPU takes ~1 GFLOP/s: minutes)
    peak_fp32 = matmul_gflops(torch.float32) * 1e9
    peak_bf16 = matmul_gflops(torch.bfloat16) * 1e9 if choice.bf16 else float("nan")
    pairs = load_pairs(args.data, (args.steps + 1) * args.batch_pairs)
    rows = [row for mode in args.modes.split(",") for row in bench_mode(mode, args, pairs, choice.bf16)]
    peak = peak_bf16 if choice.bf16 else peak_fp32
    full = next((r["sequences_per_s"] for r in rows if r["mode"] == "full"), None)
    for row in rows:
        row["mfu_vs_peak_of_precision_used"] = row["flop_per_s"] / peak
        if full:
            row["speedup_vs_full"] = row["sequences_per_s"] / full
    load_end = os.getloadavg()

    print(
        f"machine: {machine['nproc']} cores, {machine['cpu']}, torch {machine['torch']}, {machine['threads']} threads"
    )
    print(
        f"load average (1/5/15 min) start {load_start}, end {load_end}: the cores are SHARED with other jobs, "
        "so these figures are lower bounds of what the CPU can do alone"
    )
    print(f"measured matmul peak: bf16 {peak_bf16 / 1e9:.1f} GFLOP/s, fp32 {peak_fp32 / 1e9:.1f} GFLOP/s")
    print(
        f"backbone {args.backbone}, {args.batch_pairs} pairs/step ({2 * args.batch_pairs} seqs), {choice.describe()}, "
        f"{args.steps} timed steps"
    )
    header = (f"{'mode':<22}{'trainable':>13}{'step s':>9}{'seq/s':>8}{'tok/s':>9}{'GFLOP/s':>10}{'MFU':>8}"
              f"{'x full':>8}")
    print(header)
    for r in rows:
        print(
            f"{r['mode']:<22}{r['trainable_params']:>13,}{r['step_s']:>9.2f}{r['sequences_per_s']:>8.2f}"
            f"{r['tokens_per_s']:>9.0f}{r['flop_per_s'] / 1e9:>10.1f}{r['mfu_vs_peak_of_precision_used']:>8.1%}"
            f"{r.get('speedup_vs_full', float('nan')):>8.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "peak_bf16_flop_per_s": peak_bf16,
        "peak_fp32_flop_per_s": peak_fp32,
        "backbone": args.backbone,
        "precision": choice.as_dict(),
        "cpu_flags": cpu_flags(),
        "batch_pairs": args.batch_pairs,
        "steps": args.steps,
        "results": rows,
    }
    args.out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
