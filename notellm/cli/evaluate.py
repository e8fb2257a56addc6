"""CLI: `notellm quickstart` (the main job), `notellm ablate`, `notellm evaluate`, `notellm embed`, `notellm report`.

    notellm quickstart                                  # shipped Stack Exchange data, SmolLM2, 30 min budget
    notellm quickstart --notes notes.csv --events events.csv --budget 60
    notellm ablate --budget 60
    notellm evaluate --model runs/x/model --data notellm-data/se --out runs/x/eval
    notellm embed --model runs/x/model --data notellm-data/se --out vectors.npz
    notellm report runs/x/metrics.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Budget = Annotated[float, typer.Option("--budget", help="Total wall-clock minutes (split as the report says).")]
Out = Annotated[str, typer.Option("--out", help="Run folder (stages cached inside; re-run to resume).")]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _config(stackexchange, notes, events, out, model, config, budget, max_notes, skip_baselines, gen_notes, seed,
            override, warm_quantile=0.6, folds=1):
    from notellm.pipeline.quickstart import QuickstartConfig

    try:
        return QuickstartConfig(stackexchange=stackexchange, notes=notes, events=events, out=out, model=model,
                                config=config, budget_minutes=budget, max_notes=max_notes,
                                skip_baselines=skip_baselines, gen_notes=gen_notes, seed=seed,
                                warm_quantile=warm_quantile, folds=folds, overrides=list(override or []))
    except ValueError as exc:
        _fail(str(exc))


def quickstart(
    stackexchange: Annotated[str | None, typer.Option(help="Stack Exchange dumps folder (default: shipped).")]
    = None,
    notes: Annotated[str | None, typer.Option(help="Your notes file (CSV/JSONL/Parquet); needs --events.")] = None,
    events: Annotated[str | None, typer.Option(help="Your events file (behaviour log).")] = None,
    out: Out = "notellm-runs/quickstart",
    model: Annotated[str, typer.Option(help="Backbone: smollm2-135m, gemma3-270m, tiny or a local HF folder.")]
    = "smollm2-135m",
    config: Annotated[str | None, typer.Option(help="Training YAML (default: configs/<preset>.yaml).")] = None,
    budget: Budget = 30.0,
    max_notes: Annotated[int, typer.Option(help="Use only the N most engaged notes (quick slice); 0 = all.")] = 0,
    skip_baselines: Annotated[bool, typer.Option(help="Skip ablation trainings and SentenceBERT fine-tuning.")]
    = False,
    gen_notes: Annotated[int, typer.Option(help="Test notes for the generation metrics.")] = 100,
    seed: Annotated[int, typer.Option(help="Split and training seed.")] = 0,
    warm_quantile: Annotated[float, typer.Option(
        help="Cut the log at this quantile of event times for the warm-note (ItemCF) table; 0 = none.")] = 0.6,
    override: Annotated[list[str] | None, typer.Option("-o", help="Training config override key=value.")] = None,
    folds: Annotated[int, typer.Option(
        help="Note splits: NoteLLM + SentenceBERT trained per fold (budget split), queries pooled.")] = 1,
) -> None:
    """Import, mine, train NoteLLM, evaluate it against every baseline and write report.md / report.html."""
    from notellm.pipeline.quickstart import run_quickstart

    cfg = _config(stackexchange, notes, events, out, model, config, budget, max_notes, skip_baselines, gen_notes,
                  seed, override, warm_quantile, folds)
    try:
        result = run_quickstart(cfg)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"report: {result['report_html']}\n        {result['report_md']}")
    typer.echo(f"serve it: notellm serve --model {result['model']} --index {result['index']}")


def ablate(
    stackexchange: Annotated[str | None, typer.Option(help="Stack Exchange dumps folder (default: shipped).")]
    = None,
    notes: Annotated[str | None, typer.Option(help="Your notes file; needs --events.")] = None,
    events: Annotated[str | None, typer.Option(help="Your events file.")] = None,
    out: Out = "notellm-runs/ablate",
    model: Annotated[str, typer.Option(help="Backbone name or local HF folder.")] = "smollm2-135m",
    config: Annotated[str | None, typer.Option(help="Training YAML (default: configs/<preset>.yaml).")] = None,
    budget: Budget = 60.0,
    max_notes: Annotated[int, typer.Option(help="Use only the N most engaged notes; 0 = all.")] = 0,
    gen_notes: Annotated[int, typer.Option(help="Test notes for the generation metrics.")] = 50,
    seed: Annotated[int, typer.Option(help="Split and training seed.")] = 0,
    override: Annotated[list[str] | None, typer.Option("-o", help="Training config override key=value.")] = None,
) -> None:
    """Train α ∈ {0, 0.01, 0.1, 1} and r ∈ {0, 0.4, 1} and write one recall + generation table (paper Tables 5–6)."""
    from notellm.pipeline.ablate import run_ablation

    cfg = _config(stackexchange, notes, events, out, model, config, budget, max_notes, False, gen_notes, seed,
                  override)
    try:
        result = run_ablation(cfg)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"report: {result['report_html']}\n        {result['report_md']}")


def evaluate(
    model: Annotated[Path, typer.Option(help="Saved NoteLLM folder.")],
    data: Annotated[Path, typer.Option(help="Mined data folder (notes, events, pairs, note_splits).")],
    out: Annotated[Path, typer.Option(help="Folder for metrics.json and the report.")],
    baselines: Annotated[bool, typer.Option(help="Also score SentenceBERT, BM25 and ItemCF.")] = True,
    gen_notes: Annotated[int, typer.Option(help="Test notes for the generation metrics (0 = skip).")] = 100,
    pool: Annotated[str, typer.Option(help="Candidates: test (test notes), full (every note) or both.")] = "test",
    reference: Annotated[str | None, typer.Option(
        help="Method the others are compared with (default: SentenceBERT).")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples of the queries.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Recall@K with 95% intervals (paper and code rules, links, breakdowns), embedding health and generation
    metrics with baselines, for a trained NoteLLM."""
    from notellm.pipeline.evaluate_model import EvaluateConfig, evaluate_model

    try:
        cfg = EvaluateConfig(baselines=baselines, gen_notes=gen_notes, pool=pool, reference=reference,
                             resamples=resamples, seed=seed)
        result = evaluate_model(model, data, out, cfg)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"report: {result['report_html']}")


def embed(
    data: Annotated[Path, typer.Option(help="Data folder with notes.parquet.")],
    out: Annotated[Path, typer.Option(help="Vectors file to write (.npz: ids + vectors).")],
    model: Annotated[Path | None, typer.Option(help="Saved NoteLLM folder (omit with --encoder sbert).")] = None,
    encoder: Annotated[str, typer.Option(help="notellm or sbert (all-MiniLM-L6-v2).")] = "notellm",
    batch_size: Annotated[int, typer.Option(help="Notes per chunk.")] = 64,
) -> None:
    """Embed every note of a data folder into a NoteVectors .npz file."""
    from notellm.data.store import frame_to_notes, load_notes
    from notellm.retrieval.encode import NoteLLMEncoder, encode_notes

    if encoder not in ("notellm", "sbert"):
        _fail(f"--encoder must be notellm or sbert, got {encoder!r}")
    if encoder == "notellm" and model is None:
        _fail("--model is required with --encoder notellm")
    try:
        notes = frame_to_notes(load_notes(data))
        if encoder == "sbert":
            from notellm.evaluation.sbert import SentenceBertEncoder

            enc = SentenceBertEncoder()
        else:
            from notellm.model.notellm import NoteLLM

            enc = NoteLLMEncoder(NoteLLM.from_pretrained(model))
        path = encode_notes(enc, notes, chunk_size=batch_size).save(out)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {len(notes)} vectors to {path}")


def report(
    metrics: Annotated[Path, typer.Argument(help="metrics.json written by quickstart / evaluate / ablate.")],
    out: Annotated[Path | None, typer.Option(help="Report folder (default: beside metrics.json).")] = None,
) -> None:
    """Re-render report.md and report.html from a metrics.json (no computation)."""
    from notellm.report.render import write_report_from_file

    if not metrics.is_file():
        _fail(f"metrics file not found: {metrics}")
    try:
        md, html = write_report_from_file(metrics, out)
    except ValueError as exc:
        _fail(f"{metrics}: {exc}")
    typer.echo(f"report: {html}\n        {md}")


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)
    app.command("ablate")(ablate)
    app.command("evaluate")(evaluate)
    app.command("embed")(embed)
    app.command("report")(report)
