"""The data layer's public API: load a data folder's files, convert notes, and the import / mining entry points.

Other areas import from here only:

    from notellm.data.store import load_notes, load_pairs, mine_and_split

A data folder holds `notes.parquet`, `events.parquet`, optionally `links.parquet` and `pairs.parquet`, a
`rejects/` folder and `manifest.json` (see docs/data.md).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from notellm.data import schema as S
from notellm.data.artifacts import read_manifest, write_parquet
from notellm.data.cooccurrence import cooccurrence, cosine, user_note_matrix
from notellm.data.importing import ImportReport, import_files
from notellm.data.mining import MiningConfig, mine_pairs
from notellm.data.prepare import mine_and_split
from notellm.data.readers import DataFileError, read_table
from notellm.data.splits import SplitConfig, assign_pair_splits, dedup_pairs_code_rule, split_notes
from notellm.data.stackexchange import import_stackexchange
from notellm.data.stats import data_stats, kv_table, stats_tables
from notellm.data.warm import WarmHoldoutConfig

__all__ = [
    "DataFileError",
    "ImportReport",
    "MiningConfig",
    "SplitConfig",
    "WarmHoldoutConfig",
    "assign_pair_splits",
    "cooccurrence",
    "cosine",
    "data_stats",
    "dedup_pairs_code_rule",
    "frame_to_notes",
    "import_files",
    "import_stackexchange",
    "load_events",
    "load_links",
    "load_note_splits",
    "load_notes",
    "load_pairs",
    "mine_and_split",
    "mine_pairs",
    "notes_to_frame",
    "kv_table",
    "read_manifest",
    "read_table",
    "split_notes",
    "stats_tables",
    "user_note_matrix",
    "write_parquet",
]


def _read(data_dir: str | Path, name: str, hint: str) -> pd.DataFrame:
    path = Path(data_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; {hint}")
    return pd.read_parquet(path)


def load_notes(data_dir: str | Path) -> pd.DataFrame:
    """Notes of a data folder: note_id, title, content, hashtags (list[str]), category, [created_at], extras."""
    df = _read(
        data_dir, S.NOTES_FILE, "import data first with `notellm import files` or `notellm import stackexchange`"
    )
    df[S.HASHTAGS] = [list(S.tag_tuple(v)) for v in df[S.HASHTAGS].to_numpy(dtype=object)]
    return df


def load_events(data_dir: str | Path) -> pd.DataFrame:
    """The behaviour log: user_id, note_id, timestamp (UTC), action, weight, extras."""
    return _read(data_dir, S.EVENTS_FILE, "this folder was imported without events (`--events`)")


def load_pairs(data_dir: str | Path, split: str | None = None) -> pd.DataFrame:
    """Mined pairs (note_id_a, note_id_b, score, split), optionally only one split (train, val, test, warm_holdout)."""
    if split is not None and split not in S.PAIR_SPLITS:
        raise ValueError(f"split must be one of {S.PAIR_SPLITS} or None, got {split!r}")
    df = _read(data_dir, S.PAIRS_FILE, f"mine pairs first: `notellm mine {data_dir}`")
    if split is not None:
        df = df[df[S.SPLIT] == split].reset_index(drop=True)
    return df


def load_note_splits(data_dir: str | Path) -> pd.Series:
    """The split of every note ("train" | "val" | "test"), indexed by note_id (written by `notellm mine`)."""
    df = _read(data_dir, S.NOTE_SPLITS_FILE, f"mine pairs first: `notellm mine {data_dir}`")
    return df.set_index(S.NOTE_ID)[S.SPLIT]


def load_links(data_dir: str | Path) -> pd.DataFrame | None:
    """Explicit related-note links (note_id_a, note_id_b, link_type, ...) or None if the folder has none."""
    path = Path(data_dir) / S.LINKS_FILE
    return pd.read_parquet(path) if path.is_file() else None


def frame_to_notes(df: pd.DataFrame) -> list[S.Note]:
    """Rows of a notes frame as `Note`s; columns beyond the canonical ones go to `Note.extra`."""
    missing = [c for c in S.NOTE_REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"notes frame lacks column(s) {missing}")
    return [S.Note.from_dict(rec) for rec in df.to_dict(orient="records")]


def notes_to_frame(notes: list[S.Note]) -> pd.DataFrame:
    """`Note`s as a canonical notes frame; `Note.extra` keys become columns."""
    rows = [note.to_dict() for note in notes]
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in S.NOTE_REQUIRED})
    return pd.DataFrame(rows)
