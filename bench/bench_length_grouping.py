"""Padding saved by length-grouped batches (`train.group_by_length`) on a mined data folder's training pairs.

    PYTHONPATH=. python bench/bench_length_grouping.py --data /work/runs/recipes/data --batch-pairs 8

Tokenizes only (no model forward): the first `--max-batches` global batches of one epoch are collated exactly as
training does (the prompt-type draws included), with and without grouping, and the padded token slots are
counted. Compute on CPU grows with the padded width (attention with its square), so the share of padded slots is
the share of the decoder's work spent on nothing. Writes bench/results/length_grouping.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from notellm.model.collate import PairCollator
from notellm.model.prompts import NotePromptBuilder, prepare_tokenizer
from notellm.pipeline.runinfo import loadavg, machine_info
from notellm.train.data import PairBatchSampler, load_pair_data, pair_lengths


def epoch_padding(data, builder, sampler: PairBatchSampler, hashtag_ratio: float, max_batches: int) -> dict:
    collator = PairCollator(builder, hashtag_ratio=hashtag_ratio, seed=0)
    real = slots = slots_sq = real_sq = 0
    plan = sampler.epoch_plan(0)[:max_batches] if max_batches else sampler.epoch_plan(0)
    for k, batch in enumerate(plan):
        pairs = [(data.notes[a], data.notes[b]) for a, b in (sampler.pairs[i] for i in batch)]
        mask = collator.collate(pairs, k).attention_mask  # (2B, T)
        rows, width = mask.shape
        n = mask.sum(dim=1)
        real, slots = real + int(n.sum()), slots + rows * width
        real_sq, slots_sq = real_sq + int((n * n).sum()), slots_sq + rows * width * width
    return {"batches": len(plan), "real_tokens": real, "padded_slots": slots,
            "padding_share": 1 - real / slots, "attention_padding_share": 1 - real_sq / slots_sq}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="mined data folder (notes.parquet + pairs.parquet)")
    ap.add_argument("--config", default=None, help="training YAML whose model.prompt is used (default: the preset)")
    ap.add_argument("--batch-pairs", type=int, default=8)
    ap.add_argument("--hashtag-ratio", type=float, default=0.4)
    ap.add_argument("--max-batches", type=int, default=400, help="batches of the epoch collated (0 = all)")
    ap.add_argument("--out", default="bench/results/length_grouping.json")
    args = ap.parse_args()
    from notellm.configs import preset_path
    from notellm.model.backbone import load_tokenizer, resolve_backbone
    from notellm.train.config import load_train_config

    t0, load0 = time.monotonic(), loadavg()
    model_cfg = load_train_config(args.config or str(preset_path("smollm2-135m")), []).model
    tokenizer = load_tokenizer(resolve_backbone(model_cfg.backbone))
    prepare_tokenizer(tokenizer, model_cfg.prompt)
    builder = NotePromptBuilder(tokenizer, model_cfg.prompt)
    data = load_pair_data(args.data, "train")
    lengths = pair_lengths(data, builder)
    result = {"data": str(Path(args.data).resolve()), "pairs": len(data.pairs), "backbone": model_cfg.backbone,
              "prompt": str(model_cfg.prompt),
              "batch_pairs": args.batch_pairs, "machine": machine_info(), "loadavg_start": load0}
    for name, lens in (("plain", None), ("grouped", lengths)):
        sampler = PairBatchSampler(data.pairs, args.batch_pairs, seed=0, lengths=lens)
        result[name] = epoch_padding(data, builder, sampler, args.hashtag_ratio, args.max_batches)
        print(f"{name:8s} {result[name]}")
    result["slots_saved"] = 1 - result["grouped"]["padded_slots"] / result["plain"]["padded_slots"]
    result["seconds"], result["loadavg_end"] = round(time.monotonic() - t0, 1), loadavg()
    print(f"padded slots saved by grouping: {result['slots_saved']:.1%}")
    os.makedirs(Path(args.out).parent, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
