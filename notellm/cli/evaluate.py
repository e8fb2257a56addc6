"""CLI of the evaluation: `notellm evaluate` (a trained NoteLLM against the baselines, on a mined data folder).

    notellm evaluate --model runs/x/model --data notellm-data/se --out runs/x/eval
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from notellm.cli.common import DataDir, friendly


@friendly
def evaluate(
    model: Annotated[Path, typer.Option(help="Saved NoteLLM folder.")],
    data: DataDir,
    out: Annotated[Path, typer.Option(help="Folder for metrics.json and the report.")],
    baselines: Annotated[bool, typer.Option(help="Also score SentenceBERT, BM25 and ItemCF.")] = True,
    gen_notes: Annotated[int, typer.Option(help="Test notes for the generation metrics (0 = skip).")] = 100,
) -> None:
    """Recall@K (paper and code rules, links, breakdowns) and generation metrics of a trained NoteLLM."""
    from notellm.pipeline.evaluate_model import evaluate_model

    result = evaluate_model(model, data, out, baselines=baselines, gen_notes=gen_notes)
    typer.echo(f"report: {result['report_html']}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
