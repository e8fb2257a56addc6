"""CLI of the report: `notellm report` (re-render report.md / report.html from a metrics.json, no computation).

    notellm report runs/x/metrics.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from notellm.cli.common import fail, friendly


@friendly
def report(
    metrics: Annotated[Path, typer.Argument(help="metrics.json written by quickstart / evaluate / ablate.")],
    out: Annotated[Path | None, typer.Option(help="Report folder (default: beside metrics.json).")] = None,
) -> None:
    """Re-render report.md and report.html from a metrics.json (no computation)."""
    from notellm.report.render import write_report_from_file

    if not metrics.is_file():
        fail(f"metrics file not found: {metrics}")
    md, html = write_report_from_file(metrics, out)
    typer.echo(f"report: {html}\n        {md}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
