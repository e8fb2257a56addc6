"""Summaries of a data folder (`notellm data stats`): sizes, pairs per split, pairs per note, top categories/tags.

`data_stats` computes a plain dict (JSON-ready); `stats_tables` renders it as rich tables and computes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from notellm.data import schema as S
from notellm.data.artifacts import read_manifest

TOP_K = 10


def _describe(counts: pd.Series) -> dict[str, float]:
    if counts.empty:
        return {"min": 0, "median": 0, "mean": 0, "max": 0}
    return {
        "min": int(counts.min()),
        "median": float(counts.median()),
        "mean": round(float(counts.mean()), 3),
        "max": int(counts.max()),
    }


def data_stats(data_dir: str | Path, top_k: int = TOP_K) -> dict[str, Any]:
    """Counts and distributions of a data folder (files that are absent are reported as None)."""
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    notes = pd.read_parquet(data_dir / S.NOTES_FILE, columns=[S.NOTE_ID, S.HASHTAGS, S.CATEGORY])
    out: dict[str, Any] = {"data_dir": str(data_dir), "notes": len(notes)}
    out["categories"] = {str(k): int(v) for k, v in notes[S.CATEGORY].value_counts().head(top_k).items()}
    out["n_categories"] = int(notes[S.CATEGORY].nunique())
    tags = notes[S.HASHTAGS].explode().dropna()
    out["hashtags"] = {str(k): int(v) for k, v in tags.value_counts().head(top_k).items()}
    out["n_hashtags"] = int(tags.nunique())
    out["hashtags_per_note"] = _describe(notes[S.HASHTAGS].map(len))

    events_path = data_dir / S.EVENTS_FILE
    if events_path.is_file():
        events = pd.read_parquet(events_path, columns=[S.USER_ID, S.NOTE_ID, S.ACTION])
        out["events"] = len(events)
        out["users"] = int(events[S.USER_ID].nunique())
        out["actions"] = {str(k): int(v) for k, v in events[S.ACTION].value_counts().items()}
        out["events_per_user"] = _describe(events.groupby(S.USER_ID).size())
        out["notes_with_events"] = int(events[S.NOTE_ID].nunique())
    else:
        out["events"] = out["users"] = None

    pairs_path = data_dir / S.PAIRS_FILE
    if pairs_path.is_file():
        pairs = pd.read_parquet(pairs_path)
        out["pairs"] = len(pairs)
        out["pairs_per_split"] = {s: int((pairs[S.SPLIT] == s).sum()) for s in S.PAIR_SPLITS}
        out["pairs_per_source_note"] = _describe(pairs.groupby(S.NOTE_ID_A).size())
        out["score"] = _describe(pairs[S.SCORE]) if len(pairs) else None
        mining = manifest.get("mining", {})
        out["notes_per_split"] = mining.get("notes_per_split")
        out["dropped_crossing_splits"] = mining.get("dropped_crossing_splits")
    else:
        out["pairs"] = None

    links_path = data_dir / S.LINKS_FILE
    if links_path.is_file():
        links = pd.read_parquet(links_path)
        out["links"] = len(links)
        if "link_type" in links:
            out["link_types"] = {str(k): int(v) for k, v in links["link_type"].value_counts().items()}
    else:
        out["links"] = None
    out["rejected"] = manifest.get("rejected", {})
    out["skipped"] = manifest.get("skipped", {})
    return out


def kv_table(title: str, items: dict[str, Any]) -> Table:
    table = Table(title=title)
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in items.items():
        table.add_row(str(key), f"{value:,}" if isinstance(value, int) else str(value))
    return table


def stats_tables(stats: dict[str, Any]) -> list[Table]:
    """rich tables for a `data_stats` dict."""
    sizes = {k: stats.get(k) for k in ("notes", "users", "events", "pairs", "links", "n_categories", "n_hashtags")}
    tables = [kv_table(f"data folder {stats['data_dir']}", {k: ("-" if v is None else v) for k, v in sizes.items()})]
    if stats.get("pairs") is not None:
        per_split = {f"pairs: {k}": v for k, v in stats["pairs_per_split"].items()}
        per_split.update({f"notes: {k}": v for k, v in (stats.get("notes_per_split") or {}).items()})
        per_split.update({f"dropped {k}": v for k, v in (stats.get("dropped_crossing_splits") or {}).items()})
        tables.append(kv_table("splits", per_split))
        tables.append(kv_table("pairs per source note", stats["pairs_per_source_note"]))
    if stats.get("events") is not None:
        tables.append(kv_table("events per action", stats["actions"]))
        tables.append(kv_table("events per user", stats["events_per_user"]))
    tables.append(kv_table(f"top {len(stats['categories'])} categories", stats["categories"]))
    tables.append(kv_table(f"top {len(stats['hashtags'])} hashtags", stats["hashtags"]))
    if stats.get("link_types"):
        tables.append(kv_table("links", stats["link_types"]))
    rejected = {f"{kind}: {reason}": n for kind, reasons in stats["rejected"].items() for reason, n in reasons.items()}
    if rejected or stats["skipped"]:
        tables.append(kv_table("rejected / skipped at import", {**rejected, **stats["skipped"]}))
    return tables
