"""`notellm evaluate`: score a saved NoteLLM on a mined data folder's test pool, next to the cheap baselines.

    notellm evaluate --model runs/se/model --data notellm-data/se --out runs/se/eval [--pool both]

Baselines here are the ones that need no training: SentenceBERT off the shelf (the reference of the "better /
worse" verdicts unless `--reference` names another method), BM25 and ItemCF (training events); with a warm holdout
in the data folder, the warm-note table too (ItemCF on events before t0). `--pool full` (or `both`) also ranks the
test pairs against every note (the production I2I setting); it embeds every note once per encoder, and those
vectors also drive the kNN-vote generation baselines. Writes `metrics.json`, `report.md` and `report.html`.
(The quickstart runs the full set.)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from notellm.evaluation import harness as E
from notellm.evaluation.bootstrap import BootstrapConfig


@dataclass
class EvaluateConfig:
    """Options of `notellm evaluate` (the CLI flags map 1:1)."""

    baselines: bool = True
    """Also score SentenceBERT, BM25 and ItemCF."""
    gen_notes: int = 100
    """Test notes for the generation metrics (0 = skip)."""
    pool: Literal["test", "full", "both"] = "test"
    """Candidate pool: the test notes (the paper), every note (production I2I), or both tables."""
    reference: str | None = None
    """Method the others are compared with; default: SentenceBERT (off the shelf here)."""
    resamples: int = 1000
    """Bootstrap resamples of the queries."""
    seed: int = 0
    """Seed of the bootstrap and of the generation sample."""
    progress: bool = True

    def __post_init__(self) -> None:
        if self.pool not in ("test", "full", "both"):
            raise ValueError(f"--pool must be test, full or both, got {self.pool!r}")
        if self.gen_notes < 0:
            raise ValueError(f"--gen-notes must be >= 0, got {self.gen_notes}")


def evaluate_model(model_dir: str | Path, data_dir: str | Path, out: str | Path,
                   cfg: EvaluateConfig | None = None, encoder=None) -> dict:
    """`encoder`: what embeds NoteLLM's notes (e.g. an `OnnxEncoder` of this model); default: the model on PyTorch.
    Generation always runs on the PyTorch model."""
    from notellm.evaluation.health import embedding_health
    from notellm.evaluation.itemcf import ItemCFScorer
    from notellm.evaluation.lexical import BM25Scorer
    from notellm.evaluation.protocol import EmbeddingScorer
    from notellm.evaluation.sbert import SentenceBertEncoder
    from notellm.model.notellm import NoteLLM
    from notellm.pipeline.runinfo import loadavg, machine_info
    from notellm.report.metrics import COLD, FULL, WARM, DataSummary, RunMeta, RunMetrics, WarmSetting
    from notellm.report.render import write_report
    from notellm.retrieval.encode import NoteLLMEncoder, encode_notes

    cfg = cfg or EvaluateConfig()
    boot = BootstrapConfig(resamples=cfg.resamples, seed=cfg.seed)
    t0, load_start = time.monotonic(), loadavg()
    ctx = E.EvalContext.from_data_dir(data_dir)
    model = NoteLLM.from_pretrained(model_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs have loaded: a bad input leaves nothing behind
    pools = ["test", "full"] if cfg.pool == "both" else [cfg.pool]
    raw: dict[str, dict] = {p: {} for p in pools}
    health, warm_scorers, all_vectors = {}, [], {}
    encoders = [encoder or NoteLLMEncoder(model, name="NoteLLM")] + ([SentenceBertEncoder()] if cfg.baselines else [])
    for encoder in encoders:
        if "full" in pools:  # every note once; the test pool's rows are a subset
            vectors = encode_notes(encoder, ctx.candidate_notes("full"), progress=cfg.progress)
            all_vectors[encoder.name] = vectors
            pool_vectors = vectors.subset(ctx.pool_ids)
        else:
            pool_vectors = encode_notes(encoder, ctx.pool_notes(), progress=cfg.progress)
        health[encoder.name] = asdict(embedding_health(pool_vectors.matrix))
        for pool in pools:
            vectors = pool_vectors if pool == "test" else all_vectors[encoder.name]
            raw[pool][encoder.name] = E.evaluate_scorer(ctx, EmbeddingScorer(vectors, encoder.name), False, pool)
        if ctx.warm is not None:
            warm_vectors = encode_notes(encoder, ctx.warm_pool_notes(), progress=cfg.progress)
            warm_scorers.append(EmbeddingScorer(warm_vectors, encoder.name))
    if cfg.baselines:
        for pool in pools:
            raw[pool]["BM25"] = E.evaluate_scorer(ctx, BM25Scorer(ctx.notes, ctx.candidate_ids(pool)), False, pool)
            if ctx.events is not None:
                raw[pool]["ItemCF (train events)"] = E.evaluate_scorer(ctx, ItemCFScorer(ctx.train_events()), False,
                                                                       pool)
    tables = {}
    for pool in pools:
        key, setting = (COLD, "cold test notes") if pool == "test" else (FULL, "full corpus")
        tables[key] = E.retrieval_table(setting, pool, raw[pool], health if pool == "test" else None,
                                        reference=cfg.reference, cfg=boot)
    gen_ids = E.generation_sample(ctx, cfg.gen_notes)
    generation = {}
    baselines: list[dict] = []
    if gen_ids:
        val_ids = E.validation_sample(ctx, E.validation_size(cfg.gen_notes))
        generation["NoteLLM"] = E.evaluate_generation(model, ctx, gen_ids, progress=cfg.progress, val_ids=val_ids)
        baselines = E.generation_baselines(ctx, gen_ids, all_vectors)
    warm = None
    if ctx.warm is not None:
        w = E.warm_evaluation(ctx, warm_scorers, progress=False)
        warm = WarmSetting(t0=w["t0"], pairs=w["pairs"], pool_size=w["pool_size"])
        tables[WARM] = E.retrieval_table("warm notes", "warm", w["retrieval"], reference=cfg.reference, cfg=boot)
    metrics = RunMetrics(
        meta=RunMeta(title=f"evaluate {model_dir}", backbone=str(model_dir), machine=machine_info(),
                     seconds=time.monotonic() - t0, loadavg_start=load_start, loadavg_end=loadavg(),
                     command="notellm evaluate"),
        data=DataSummary(notes=len(ctx.notes), events=0 if ctx.events is None else len(ctx.events),
                         pairs={"train": len(ctx.train_pairs), "test": len(ctx.test_pairs)},
                         pool_size=len(ctx.pool_ids), links_in_pool=ctx.links_in_pool()),
        tables=tables, warm=warm, generation=E.generation_report(generation, baselines))
    (out / "metrics.json").write_text(json.dumps(metrics.to_dict(), indent=1, default=str), encoding="utf-8")
    md, html = write_report(metrics, out)
    return {"report_md": str(md), "report_html": str(html), "metrics": str(out / "metrics.json")}
