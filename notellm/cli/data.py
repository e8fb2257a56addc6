"""CLI of the data layer: `notellm import files|stackexchange`, `notellm mine`, `notellm data stats`.

notellm import stackexchange ../shared/data/stackexchange --out notellm-data/stackexchange
notellm mine notellm-data/stackexchange --max-gap 30d
notellm mine notellm-data/stackexchange --engine duckdb --duckdb-memory-limit 8GB
notellm mine notellm-data/stackexchange --engine spark --spark-master spark://host:7077 \
    --spark-conf spark.executor.memory=8g
notellm data stats notellm-data/stackexchange
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from notellm.cli.common import console, friendly

DEFAULT_ROOT = Path("notellm-data")


def _print_report(report: Any) -> None:
    console.print(report.table())
    for message in report.messages:
        console.print(f"[yellow]rejected:[/yellow] {escape(message)}", soft_wrap=True, highlight=False)
    if report.rejected:
        console.print(f"all rejected rows, with reason and row: {report.out_dir / 'rejects'}/<kind>.csv (.parquet)")
    console.print(f"[green]wrote[/green] {report.out_dir}")


import_app = typer.Typer(help="Import notes and behaviour logs into a notellm data folder.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect a notellm data folder.", no_args_is_help=True)


@import_app.command("files")
@friendly
def import_files_cmd(
    notes: Annotated[
        Path,
        typer.Option(
            help="Notes file (.csv/.tsv/.jsonl/.parquet): note_id, title, content, "
            "hashtags (JSON array or a|b), category [, created_at, extras]."
        ),
    ],
    events: Annotated[
        Path | None,
        typer.Option(help="Events file: user_id, note_id, timestamp (ISO 8601 or Unix seconds) [, action, weight]."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Data folder to write (default notellm-data/<notes file name>).")
    ] = None,
    on_bad_bytes: Annotated[
        str, typer.Option(help="Rows with undecodable bytes: 'reject' or 'replace' (keep, with U+FFFD).")
    ] = "reject",
) -> None:
    """Validate your own notes (and events) files and write them as a data folder; bad rows go to rejects/."""
    from notellm.data.store import import_files

    if on_bad_bytes not in ("reject", "replace"):
        raise ValueError(f"--on-bad-bytes must be 'reject' or 'replace', got {on_bad_bytes!r}")
    out = out or DEFAULT_ROOT / notes.stem
    with console.status(f"reading and validating {notes}" + (f" and {events}" if events else "")):
        report = import_files(notes, events, out, on_bad_bytes=on_bad_bytes)  # type: ignore[arg-type]
    _print_report(report)


@import_app.command("stackexchange")
@friendly
def import_stackexchange_cmd(
    site_dirs: Annotated[
        list[Path], typer.Argument(help="Site folders (beer.stackexchange.com, ...) or a folder holding several.")
    ],
    out: Annotated[Path, typer.Option(help="Data folder to write.")] = DEFAULT_ROOT / "stackexchange",
    category_level2: Annotated[
        str, typer.Option(help="'none' (category = site) or 'first-tag' (site/first tag).")
    ] = "none",
) -> None:
    """Import Stack Exchange dumps: questions as notes, ask/answer/comment as events, PostLinks as links."""
    from notellm.data.store import import_stackexchange

    report = import_stackexchange(site_dirs, out, category_level2=category_level2)  # type: ignore[arg-type]
    _print_report(report)


def mine_cmd(
    data_dir: Annotated[Path, typer.Argument(help="Data folder with notes.parquet and events.parquet.")],
    window: Annotated[int, typer.Option(help="B within the next N interactions after A (0: no count limit).")] = 10,
    max_gap: Annotated[str | None, typer.Option(help="B at most this long after A, e.g. 7d, 12h, 30min.")] = None,
    lower: Annotated[float, typer.Option(help="l: drop pairs scoring below this.")] = 0.01,
    upper: Annotated[float, typer.Option(help="u: drop pairs scoring above this.")] = 30.0,
    top_t: Annotated[int, typer.Option(help="t: pairs kept per source note.")] = 10,
    actions: Annotated[str | None, typer.Option(help="Comma-separated actions that count (default: all).")] = None,
    use_weights: Annotated[bool, typer.Option(help="Multiply contributions by the events' weight.")] = False,
    symmetric: Annotated[bool, typer.Option(help="Undirected co-occurrence, both directions emitted.")] = False,
    balance_per_combination: Annotated[
        int | None, typer.Option(help="Cap pairs per (category_a, category_b).")
    ] = None,
    balance_level: Annotated[
        int | None, typer.Option(help="Category levels used for balancing (default all).")
    ] = None,
    val_frac: Annotated[float, typer.Option(help="Fraction of notes in validation.")] = 0.1,
    test_frac: Annotated[float, typer.Option(help="Fraction of notes in test.")] = 0.1,
    split_method: Annotated[str, typer.Option(help="'hash' (by note id) or 'time' (newest notes are test).")] = "hash",
    seed: Annotated[int, typer.Option(help="Seed for the split hash and the balancing draw.")] = 0,
    warm_quantile: Annotated[float, typer.Option(
        help="Cut the log at this quantile of event times and hold out new later co-occurrences of notes with "
             "earlier behaviour for the warm-note (ItemCF) evaluation; 0 = off.")] = 0.0,
    max_events_per_user: Annotated[int | None, typer.Option(
        help="Keep only each user's first N events (crawlers, bots); the manifest counts what was dropped. "
             "Default: no cap (the paper's rule).")] = None,
    engine: Annotated[str, typer.Option(
        help="pandas (in memory), duckdb (out of core, spills to disk) or spark (any Spark master); "
             "all give the same pairs.")] = "pandas",
    duckdb_memory_limit: Annotated[str, typer.Option(help="DuckDB memory limit before spilling, e.g. 8GB.")] = "4GB",
    duckdb_temp_dir: Annotated[str | None, typer.Option(
        help="Where DuckDB spills (default: a temporary folder).")] = None,
    spark_master: Annotated[str, typer.Option(
        help="Spark master URL: local[N], spark://host:7077, yarn, k8s://...")] = "local[2]",
    spark_conf: Annotated[list[str] | None, typer.Option(
        help="Spark session setting key=value (repeatable), e.g. spark.executor.memory=8g.")] = None,
    events: Annotated[str | None, typer.Option(
        help="Spark only: mine these events instead of the folder's events.parquet: a Parquet/CSV/JSONL path or "
             "a table name (user_id, note_id, timestamp [, action, weight]).")] = None,
) -> None:
    """Mine co-occurrence pairs (s(A→B) = Σ 1/N_u), split them by note, write pairs.parquet, update the manifest."""
    from notellm.data.store import MiningConfig, SplitConfig, WarmHoldoutConfig, kv_table, mine_and_split

    mining = MiningConfig(
        window=window or None,
        max_gap=max_gap,
        lower=lower,
        upper=upper,
        top_t=top_t,
        actions=[a.strip() for a in actions.split(",") if a.strip()] if actions else None,
        use_weights=use_weights,
        symmetric=symmetric,
        balance_per_combination=balance_per_combination,
        balance_level=balance_level,
        seed=seed,
        max_events_per_user=max_events_per_user,
    )
    from notellm.data.mining_engine import ENGINES, DuckDBSettings, SparkSettings
    from notellm.spark_session import parse_conf

    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if events is not None and engine != "spark":
        raise ValueError("--events needs --engine spark (pandas and duckdb read the data folder's events.parquet)")
    duckdb = DuckDBSettings(memory_limit=duckdb_memory_limit, temp_directory=duckdb_temp_dir)
    spark = SparkSettings(master=spark_master, conf=parse_conf(spark_conf), events=events)
    split = SplitConfig(val_frac=val_frac, test_frac=test_frac, seed=seed, method=split_method)  # type: ignore[arg-type]
    warm = WarmHoldoutConfig(quantile=warm_quantile) if warm_quantile else None
    section = mine_and_split(data_dir, mining, split, warm_cfg=warm, engine=engine, duckdb=duckdb, spark=spark)
    console.print(kv_table("mining", section["stats"]))
    console.print(kv_table("pairs per split", section["pairs_per_split"]))
    if section["dropped_crossing_splits"]:
        console.print(kv_table("pairs dropped: notes in different splits", section["dropped_crossing_splits"]))
    if warm:
        held = section["warm_holdout"]
        console.print(f"warm holdout: skipped, {held['skipped']}" if "skipped" in held else kv_table(
            "warm holdout", {k: v for k, v in held.items() if k != "config"}))
    console.print(f"[green]wrote[/green] {data_dir / 'pairs.parquet'} in {section['seconds']} s ({engine})")


@data_app.command("stats")
@friendly
def stats_cmd(
    data_dir: Annotated[Path, typer.Argument(help="A notellm data folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON instead of tables.")] = False,
) -> None:
    """Notes, users, events, pairs per split, pairs per note, top categories and hashtags, links."""
    from notellm.data.store import data_stats, stats_tables

    stats = data_stats(data_dir)
    if as_json:
        typer.echo(json.dumps(stats, indent=2, ensure_ascii=False))
        return
    for table in stats_tables(stats):
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add `import`, `data` and `mine` to the notellm app."""
    app.add_typer(import_app, name="import")
    app.add_typer(data_app, name="data")
    app.command("mine")(friendly(mine_cmd))
