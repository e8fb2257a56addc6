"""Which training recipe learns most from a fixed CPU budget: full fine-tuning, top-N cached, LoRA, and fine-tuned
SentenceBERT, each trained for the same wall-clock seconds on the shipped data and scored on the same cold test pool.

    flock /tmp/notellm-heavy.lock python bench/compare_recipes.py --out /tmp/recipes --seconds 180 --recipe top4
    python bench/compare_recipes.py --out /tmp/recipes --table      # the markdown table of every recipe run so far

One recipe per invocation (each fits in a 10-minute locked slot); data import + mining are cached stages shared by
all of them. Per recipe it records optimizer steps, pairs seen, the validation loss at the end (16 val pairs; the
untrained model's validation is computed once for all recipes), test recall (paper rule, the quickstart's
protocol), seconds, precision and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHORT = ["model.prompt.content_max_tokens=40", "model.prompt.note_max_tokens=96"]
RECIPES = {
    "full": ["train.mode=full"],
    "top2": ["train.mode=top_n", "train.top_n_layers=2", "train.lr=1e-4"],
    "top4": ["train.mode=top_n", "train.top_n_layers=4", "train.lr=1e-4"],
    "top8": ["train.mode=top_n", "train.top_n_layers=8", "train.lr=1e-4"],
    "lora": ["train.mode=lora", "train.lora_r=16", "train.lora_alpha=32", "train.lr=2e-4"],
    # the note body cut to 40 content tokens (96 in all) instead of 80 (140): about half the tokens per sequence
    "top4_c40": ["train.mode=top_n", "train.top_n_layers=4", "train.lr=1e-4", *SHORT],
    "top2_c40": ["train.mode=top_n", "train.top_n_layers=2", "train.lr=1e-4", *SHORT],
    "full_c40": ["train.mode=full", *SHORT],
    "lora_top8": ["train.mode=lora", "train.lora_layers=8", "train.lora_r=16", "train.lora_alpha=32", "train.lr=2e-4"],
}
COMMON = ["train.eval_every=100000", "train.val_max_pairs=16", "train.checkpoint_every=0"]


def _recall(result: dict) -> dict:
    overall = result["paper"]["overall"]
    return {k: overall[k] for k in overall if k.startswith("recall")} | {"n_queries": overall["n_queries"]}


def _ranks(result: dict) -> dict:
    """The paper-rule rank interval of every query: what the paired bootstrap of the table needs."""
    raw = result["paper"]
    return {k: raw[k] for k in ("greater", "ties", "ks", "pool_size", "n_candidates", "query_digest")}


def run(recipe: str, out: Path, seconds: float, threads: int | None = None) -> dict:
    import torch
    from rich.console import Console

    from notellm.evaluation.harness import evaluate_scorer
    from notellm.evaluation.protocol import EmbeddingScorer
    from notellm.pipeline.quickstart import QuickstartConfig, prepare_data, train_config, train_run
    from notellm.pipeline.stages import StageRunner
    from notellm.retrieval.encode import encode_notes

    if threads:
        torch.set_num_threads(threads)
    load_start = os.getloadavg()
    console = Console(stderr=True)
    from notellm.configs import preset_path

    # every recipe starts from the paper's preset (full fine-tuning) + its overrides, on any device
    cfg = QuickstartConfig(out=str(out), progress=True, config=str(preset_path("smollm2-135m")))
    ctx, _, _ = prepare_data(cfg, StageRunner(out, console), out / "data", console)
    t0 = time.monotonic()
    if recipe == "sbert":
        from notellm.data import schema as S
        from notellm.evaluation.sbert import finetune_sbert

        pairs = [(ctx.notes_by_id[str(a)], ctx.notes_by_id[str(b)])
                 for a, b in zip(ctx.train_pairs[S.NOTE_ID_A], ctx.train_pairs[S.NOTE_ID_B])]
        encoder, log = finetune_sbert(pairs, max_seconds=seconds, seed=0)
        row = {"steps": log["steps"], "pairs_seen": log["steps"] * 32, "val_loss": None,
               "train_seconds": log["seconds"], "precision": log["precision"]["name"]}
        encoder.name = "SentenceBERT fine-tuned"
    else:
        from notellm.model.notellm import NoteLLM
        from notellm.retrieval.encode import NoteLLMEncoder

        tcfg, _ = train_config(cfg, out / "data", out / "runs" / recipe, seconds,
                               RECIPES[recipe] + COMMON + [f"train.val0_cache={out / 'val0_cache.json'}"])
        trained = train_run(tcfg)
        rows = [json.loads(x) for x in Path(trained["metrics_path"]).read_text().splitlines() if x.strip()]
        val = [r["val_loss"] for r in rows if "val_loss" in r]
        result = json.loads((Path(tcfg.train.out_dir) / "train_result.json").read_text())
        row = {"steps": trained["steps"], "pairs_seen": trained["steps"] * tcfg.train.batch_pairs,
               "val_loss_start": val[0] if val else None, "val_loss": val[-1] if len(val) > 1 else None,
               "train_seconds": trained["seconds"], "precision": trained["precision"]["name"],
               "peak_gflops": trained["precision"]["peak_gflops"], "frozen_cache": result.get("frozen_cache"),
               "stop_reason": trained["stop_reason"], "total_steps": trained["total_steps"]}
        encoder = NoteLLMEncoder(NoteLLM.from_pretrained(trained["model_dir"]), name=recipe)
    vectors = encode_notes(encoder, ctx.pool_notes(), desc=f"embed test pool ({recipe})")
    result = evaluate_scorer(ctx, EmbeddingScorer(vectors, recipe), progress=False)
    row["test"] = _recall(result)
    row["paper_ranks"] = _ranks(result)
    row.update(recipe=recipe, threads=torch.get_num_threads(), affinity=sorted(os.sched_getaffinity(0)),
               budget_seconds=seconds, wall_seconds=time.monotonic() - t0,
               pool=len(ctx.pool_ids), loadavg_start=load_start, loadavg_end=os.getloadavg(),
               train_pairs=len(ctx.train_pairs))
    (out / "recipes").mkdir(parents=True, exist_ok=True)
    (out / "recipes" / f"{recipe}.json").write_text(json.dumps(row, indent=1))
    return row


def table(out: Path, reference: str = "sbert") -> str:
    """Markdown: one row per recipe run, metrics as value ± half-width of the 95% paired-bootstrap interval over the
    test queries, and the difference to `reference` (fine-tuned SentenceBERT) with its interval and verdict."""
    from notellm.evaluation.results import build_table

    rows = {p.stem: json.loads(p.read_text()) for p in sorted((out / "recipes").glob("*.json"))}
    ranked = {name: {"paper": r["paper_ranks"]} for name, r in rows.items() if "paper_ranks" in r}
    built = build_table("recipes", "test pool, paper rule", ranked,
                        reference=reference if reference in ranked else None) if ranked else None
    lines = ["| recipe | threads | steps | pairs seen | val loss (start → end) | test R@10 | test R@avg | MRR | "
             f"R@avg − {reference} | train s | load avg |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        val = (f"{r['val_loss_start']:.3f} → {r['val_loss']:.3f}" if r.get("val_loss") is not None else "–")
        res = built.methods.get(name, {}).get("paper") if built else None
        if res is None:  # a run from before the per-query ranks were stored: point values only
            t = r["test"]
            r10, avg, mrr, diff = f"{100 * t['recall@10']:.2f}", f"{100 * t['recall_avg']:.2f}", "–", "–"
        else:
            def pm(metric):
                e = res.metrics[metric]
                return f"{100 * e.value:.2f} ± {100 * e.half_width:.2f}"
            r10, avg, mrr = pm("recall@10"), pm("recall_avg"), pm("mrr")
            d = res.versus_reference.get("recall_avg")
            diff = (f"{100 * d.value:+.2f} [{100 * d.lo:+.2f}, {100 * d.hi:+.2f}] {d.verdict}" if d else "reference")
        lines.append(f"| {name} | {r.get('threads', '–')} | {r['steps']} | {r['pairs_seen']} | {val} | {r10} | {avg} "
                     f"| {mrr} | {diff} | {r['train_seconds']:.0f} "
                     f"| {r['loadavg_start'][0]:.1f}–{r['loadavg_end'][0]:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--recipe", choices=[*RECIPES, "sbert"])
    parser.add_argument("--seconds", type=float, default=180.0, help="training seconds per recipe")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--reference", default="sbert", help="the recipe the table compares every other one with")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.recipe:
        print(json.dumps(run(args.recipe, args.out.resolve(), args.seconds, args.threads), indent=1))
    if args.table:
        print(table(args.out.resolve(), args.reference))


if __name__ == "__main__":
    main()
