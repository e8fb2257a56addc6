"""CLI of the evaluation: `notellm evaluate` (a trained NoteLLM against the baselines, on a mined data folder).

    notellm evaluate --model runs/x/model --data notellm-data/se --out runs/x/eval
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from notellm.cli.common import DataDir, fail, friendly


@friendly
def evaluate(
    model: Annotated[Path, typer.Option(help="Saved NoteLLM folder.")],
    data: DataDir,
    out: Annotated[Path, typer.Option(help="Folder for metrics.json and the report.")],
    baselines: Annotated[bool, typer.Option(help="Also score SentenceBERT, BM25 and ItemCF.")] = True,
    gen_notes: Annotated[int, typer.Option(help="Test notes for the generation metrics (0 = skip).")] = 100,
    runtime: Annotated[str, typer.Option(help="Embed on torch (the --model) or onnx (the --onnx-model export); "
                                              "generation always runs on the PyTorch --model.")] = "torch",
    onnx_model: Annotated[Path | None, typer.Option(help="`notellm export` folder of --model (with --runtime onnx).")]
    = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for ONNX Runtime (default: PyTorch's).")] = None,
    pool: Annotated[str, typer.Option(help="Candidates: test (test notes), full (every note) or both.")] = "test",
    reference: Annotated[str | None, typer.Option(
        help="Method the others are compared with (default: SentenceBERT).")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples of the queries.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Recall@K with 95% intervals (paper and code rules, links, breakdowns), embedding health and generation
    metrics with baselines, for a trained NoteLLM."""
    from notellm.pipeline.evaluate_model import EvaluateConfig, evaluate_model

    if runtime not in ("torch", "onnx"):
        fail(f"--runtime must be torch or onnx, got {runtime!r}")
    if (runtime == "onnx") != (onnx_model is not None):
        fail("--runtime onnx and --onnx-model go together (the export folder to embed with)")
    encoder = None
    if onnx_model is not None:
        from notellm.inference.load import load_encoder

        encoder = load_encoder(onnx_model, "onnx", threads=threads)
    cfg = EvaluateConfig(baselines=baselines, gen_notes=gen_notes, pool=pool, reference=reference,
                         resamples=resamples, seed=seed)
    result = evaluate_model(model, data, out, cfg, encoder=encoder)
    typer.echo(f"report: {result['report_html']}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
