"""CLI of the report: `notellm report` (re-render report.md / report.html from a metrics.json, no computation).

    notellm report runs/x/metrics.json
    notellm report runs/x/metrics.json --readme > tables.md   # the README's result tables of that run
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
    readme: Annotated[bool, typer.Option("--readme", help="Print the README's result tables (Markdown, with "
                                         "intervals and verdicts) to stdout instead of writing the report.")] = False,
) -> None:
    """Re-render report.md and report.html from a metrics.json (no computation)."""
    from notellm.report.render import metrics_from_file, render_readme_tables, write_report

    if not metrics.is_file():
        fail(f"metrics file not found: {metrics}")
    run = metrics_from_file(metrics)
    if readme:
        typer.echo(render_readme_tables(run))
        return
    md, html = write_report(run, out or metrics.parent)
    typer.echo(f"report: {html}\n        {md}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
