"""CLI of the pipeline: `notellm quickstart` (the main job) and `notellm ablate`.

    notellm quickstart                                  # shipped Stack Exchange data, SmolLM2, 30 min budget
    notellm quickstart --notes notes.csv --events events.csv --budget 60 --set train.batch_pairs=4
    notellm ablate --budget 60
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from notellm.cli.common import Set, deprecated_overrides, friendly

Budget = Annotated[float, typer.Option("--budget", help="Total wall-clock minutes (split as the report says).")]
Out = Annotated[str, typer.Option("--out", help="Run folder (stages cached inside; re-run to resume).")]
Config = Annotated[str | None, typer.Option(help="Training YAML (default: the preset shipped for --model).")]
OldOverride = Annotated[list[str] | None, typer.Option("-o", hidden=True, help="Deprecated: use --set.")]
Seed = Annotated[int, typer.Option(help="Split and training seed.")]
Recipe = Annotated[str, typer.Option(
    help="auto (the measured CPU recipe when training on a CPU, else the preset), preset (full fine-tuning) or cpu.")]


def _config(stackexchange, notes, events, out, model, config, budget, max_notes, skip_baselines, gen_notes, seed,
            overrides, warm_quantile=0.6, precision="auto", folds=1, recipe="auto"):
    """The run's config, its training config (--config, then --set) checked before any stage runs: a mistyped key
    fails in seconds, not after import and mining."""
    from notellm.pipeline.quickstart import QuickstartConfig, train_config

    cfg = QuickstartConfig(stackexchange=stackexchange, notes=notes, events=events, out=out, model=model,
                           config=config, budget_minutes=budget, max_notes=max_notes, skip_baselines=skip_baselines,
                           gen_notes=gen_notes, seed=seed, warm_quantile=warm_quantile, overrides=overrides,
                           precision=precision, folds=folds, recipe=recipe)
    train_config(cfg, Path(out), Path(out), seconds=1.0, extra=[])
    return cfg


@friendly
def quickstart(
    stackexchange: Annotated[str | None, typer.Option(help="Stack Exchange dumps folder (default: shipped).")]
    = None,
    notes: Annotated[str | None, typer.Option(help="Your notes file (CSV/JSONL/Parquet); needs --events.")] = None,
    events: Annotated[str | None, typer.Option(help="Your events file (behaviour log).")] = None,
    out: Out = "notellm-runs/quickstart",
    model: Annotated[str, typer.Option(help="Backbone: smollm2-135m, gemma3-270m, tiny or a local HF folder.")]
    = "smollm2-135m",
    config: Config = None,
    budget: Budget = 30.0,
    max_notes: Annotated[int, typer.Option(help="Use only the N most engaged notes (quick slice); 0 = all.")] = 0,
    skip_baselines: Annotated[bool, typer.Option(help="Skip ablation trainings and SentenceBERT fine-tuning.")]
    = False,
    gen_notes: Annotated[int, typer.Option(help="Test notes for the generation metrics.")] = 100,
    seed: Seed = 0,
    warm_quantile: Annotated[float, typer.Option(
        help="Cut the log at this quantile of event times for the warm-note (ItemCF) table; 0 = none.")] = 0.6,
    precision: Annotated[str, typer.Option(
        help="auto (bf16 where the hardware computes it natively, else fp32), bf16 or fp32.")] = "auto",
    folds: Annotated[int, typer.Option(
        help="Note splits: NoteLLM + SentenceBERT trained per fold (budget split), queries pooled.")] = 1,
    recipe: Recipe = "auto",
    set_: Set = None,
    old: OldOverride = None,
) -> None:
    """Import, mine, train NoteLLM, evaluate it against every baseline and write report.md / report.html."""
    from notellm.pipeline.quickstart import run_quickstart

    overrides = deprecated_overrides(old, set_, "-o")
    result = run_quickstart(_config(stackexchange, notes, events, out, model, config, budget, max_notes,
                                    skip_baselines, gen_notes, seed, overrides, warm_quantile, precision, folds,
                                    recipe))
    typer.echo(f"report: {result['report_html']}\n        {result['report_md']}")
    if result["index"]:
        typer.echo(f"serve it: notellm serve --model {result['model']} --index {result['index']}")
    else:
        typer.echo(f"no serving index (it did not fit the budget; see the report): model in {result['model']}")


@friendly
def ablate(
    stackexchange: Annotated[str | None, typer.Option(help="Stack Exchange dumps folder (default: shipped).")]
    = None,
    notes: Annotated[str | None, typer.Option(help="Your notes file; needs --events.")] = None,
    events: Annotated[str | None, typer.Option(help="Your events file.")] = None,
    out: Out = "notellm-runs/ablate",
    model: Annotated[str, typer.Option(help="Backbone name or local HF folder.")] = "smollm2-135m",
    config: Config = None,
    budget: Budget = 60.0,
    max_notes: Annotated[int, typer.Option(help="Use only the N most engaged notes; 0 = all.")] = 0,
    gen_notes: Annotated[int, typer.Option(help="Test notes for the generation metrics.")] = 50,
    seed: Seed = 0,
    recipe: Recipe = "auto",
    set_: Set = None,
    old: OldOverride = None,
) -> None:
    """Train α ∈ {0, 0.01, 0.1, 1} and r ∈ {0, 0.4, 1} and write one recall + generation table (paper Tables 5–6)."""
    from notellm.pipeline.ablate import run_ablation

    overrides = deprecated_overrides(old, set_, "-o")
    result = run_ablation(_config(stackexchange, notes, events, out, model, config, budget, max_notes, False,
                                  gen_notes, seed, overrides, recipe=recipe))
    typer.echo(f"report: {result['report_html']}\n        {result['report_md']}")


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)
    app.command("ablate")(ablate)
