"""Is constrained decoding degenerate on a trained model? Diversity and accuracy of every constrained decoder.

    flock /tmp/notellm-heavy.lock python bench/decoder_diversity.py --model RUN/model --data DATA --notes 48 \
        --out bench/results/decoder_diversity.json

Per decoder of `evaluation.harness.SCORINGS` (greedy, pmi λ, beam) on the same seeded sample of test notes:
distinct generated tags per note, the share of notes given the modal tag list (and that list), exact-tag P / R,
category accuracy and the share of notes given the modal category; beside them the training set's most-frequent
baseline. Records seconds per decoder, the machine and the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a saved NoteLLM folder")
    ap.add_argument("--data", required=True, help="a prepared data folder (notellm mine output)")
    ap.add_argument("--notes", type=int, default=48, help="test notes decoded by every decoder")
    ap.add_argument("--decoders", default="", help="comma-separated SCORINGS labels (default: all)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()

    import torch

    from notellm.evaluation.generation import category_metrics, tag_metrics
    from notellm.evaluation.generation_baselines import diversity, most_frequent
    from notellm.evaluation.harness import SCORINGS, EvalContext, generation_sample
    from notellm.model.notellm import NoteLLM

    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    ctx = EvalContext.from_data_dir(args.data)
    model = NoteLLM.from_pretrained(args.model)
    notes = [ctx.notes_by_id[i] for i in generation_sample(ctx, args.notes)]
    categories, vocabulary = ctx.category_set(), ctx.hashtag_vocabulary()
    truth_tags, truth_cats = [list(n.hashtags) for n in notes], [n.category for n in notes]

    def scores(cats: list[str], tags: list[list[str]], seconds: float | None) -> dict:
        modal_cat, count = Counter(cats).most_common(1)[0]
        return {"diversity": diversity(tags), "tags": tag_metrics(tags, truth_tags, vocabulary),
                "category_acc": category_metrics(cats, truth_cats, categories)["acc"],
                "modal_category": modal_cat, "modal_category_share": count / len(cats), "seconds": seconds,
                "examples": [{"note": n.title[:80], "tags": t, "category": c, "true_tags": list(n.hashtags)}
                             for n, t, c in list(zip(notes, tags, cats))[:5]]}

    train = [ctx.notes_by_id[i] for i in ctx.train_ids]
    top_cat = most_frequent([[n.category] for n in train], 1)[0]
    top_tags = most_frequent([list(n.hashtags) for n in train], 5)
    results = {"most frequent (baseline)": scores([top_cat] * len(notes), [top_tags] * len(notes), None)}
    labels = [s for s in args.decoders.split(",") if s] or list(SCORINGS)
    unknown = sorted(set(labels) - set(SCORINGS))
    if unknown:
        raise SystemExit(f"--decoders: unknown {unknown}; choose from {list(SCORINGS)}")

    def write() -> None:  # after every decoder, so a run stopped by its time limit keeps what it measured
        out = {"command": " ".join(sys.argv), "model": args.model, "data": args.data, "notes": len(notes),
               "vocabulary": len(vocabulary), "categories": len(categories), "results": results,
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                          f"torch threads {torch.get_num_threads()}",
               "load_average_start": load_start, "load_average_end": os.getloadavg()}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1, ensure_ascii=False))

    for label in labels:
        start = time.perf_counter()
        cats = model.generate_category(notes, constrained=True, categories=categories, **SCORINGS[label])
        tags = model.generate_hashtags(notes, k=5, constrained=True, vocabulary=vocabulary, **SCORINGS[label])
        results[label] = scores(cats, tags, round(time.perf_counter() - start, 1))
        d = results[label]
        print(f"{label:>12}: distinct/note {d['diversity']['distinct_per_note']:.2f}  modal share "
              f"{d['diversity']['modal_share']:.2f}  tag P {d['tags']['tag_precision']:.3f} R "
              f"{d['tags']['tag_recall']:.3f}  cat acc {d['category_acc']:.3f}  modal cat share "
              f"{d['modal_category_share']:.2f}  ({d['seconds']} s)", flush=True)
        write()


if __name__ == "__main__":
    main()
