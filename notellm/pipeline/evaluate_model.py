"""`notellm evaluate`: score a saved NoteLLM on a mined data folder's test pool, next to the cheap baselines.

    notellm evaluate --model runs/se/model --data notellm-data/se --out runs/se/eval

Baselines here are the ones that need no training: SentenceBERT off the shelf, BM25 and ItemCF (training events);
with a warm holdout in the data folder, the warm-note table too (ItemCF on events before t0).
Writes `metrics.json`, `report.md` and `report.html` into `out`. (The quickstart runs the full set.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from notellm.pipeline.context import (EvalContext, evaluate_generation, evaluate_scorer, generation_sample,
                                      warm_evaluation)


def evaluate_model(model_dir: str | Path, data_dir: str | Path, out: str | Path, baselines: bool = True,
                   gen_notes: int = 100, progress: bool = True, encoder=None) -> dict:
    """`encoder`: what embeds NoteLLM's notes (e.g. an `OnnxEncoder` of this model); default: the model on PyTorch.
    Generation always runs on the PyTorch model."""
    from notellm.evaluation.itemcf import ItemCFScorer
    from notellm.evaluation.lexical import BM25Scorer
    from notellm.evaluation.protocol import EmbeddingScorer
    from notellm.evaluation.sbert import SentenceBertEncoder
    from notellm.model.notellm import NoteLLM
    from notellm.pipeline.quickstart import _loadavg, machine_info
    from notellm.report.render import write_report
    from notellm.retrieval.encode import NoteLLMEncoder, encode_notes

    t0, load_start = time.monotonic(), _loadavg()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = EvalContext.from_data_dir(data_dir)
    model = NoteLLM.from_pretrained(model_dir)
    retrieval, warm_scorers = {}, []
    encoders = [encoder or NoteLLMEncoder(model)] + ([SentenceBertEncoder()] if baselines else [])
    for encoder in encoders:
        vectors = encode_notes(encoder, ctx.pool_notes(), progress=progress)
        retrieval[encoder.name] = evaluate_scorer(ctx, EmbeddingScorer(vectors, encoder.name), progress=False)
        if ctx.warm is not None:
            warm_vectors = encode_notes(encoder, ctx.warm_pool_notes(), progress=progress)
            warm_scorers.append(EmbeddingScorer(warm_vectors, encoder.name))
    if baselines:
        retrieval["BM25"] = evaluate_scorer(ctx, BM25Scorer(ctx.notes, ctx.pool_ids), progress=False)
        if ctx.events is not None:
            retrieval["ItemCF (train events)"] = evaluate_scorer(ctx, ItemCFScorer(ctx.train_events()), False)
    gen_ids = generation_sample(ctx, gen_notes)
    generation = {}
    if gen_ids:
        gen = evaluate_generation(model, ctx, gen_ids, progress=progress)
        generation["NoteLLM"] = {k: v for k, v in gen.items() if k != "outputs"}
    metrics = {
        "meta": {"title": f"evaluate {model_dir}", "backbone": str(model_dir), "machine": machine_info(),
                 "seconds": time.monotonic() - t0, "loadavg_start": load_start, "loadavg_end": _loadavg(),
                 "command": "notellm evaluate"},
        "data": {"notes": len(ctx.notes), "events": 0 if ctx.events is None else len(ctx.events),
                 "pairs": {"train": len(ctx.train_pairs), "test": len(ctx.test_pairs)},
                 "pool_size": len(ctx.pool_ids), "links_in_pool": ctx.links_in_pool()},
        "retrieval": retrieval,
        "generation": generation,
    }
    if ctx.warm is not None:
        metrics["warm"] = warm_evaluation(ctx, warm_scorers, progress=False)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str), encoding="utf-8")
    md, html = write_report(metrics, out)
    return {"report_md": str(md), "report_html": str(html), "metrics": str(out / "metrics.json")}
