"""The canonical data model every stage reads and writes: notes, events (the behaviour log) and pairs.

A data folder (written by `notellm import ...`) holds Parquet files with exactly these columns plus a
`manifest.json`. Notes keep any extra columns a user's file had. Internally most stages work on integer rows;
string note ids are the only identity that crosses files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from notellm.data.limits import url_problem

# --- file names inside a data folder -------------------------------------------------------------------------
NOTES_FILE = "notes.parquet"
EVENTS_FILE = "events.parquet"
PAIRS_FILE = "pairs.parquet"  # mined co-occurrence pairs, with their split
LINKS_FILE = "links.parquet"  # explicit related-note pairs (e.g. Stack Exchange PostLinks), for evaluation only
NOTE_SPLITS_FILE = "note_splits.parquet"  # note_id, split: which split every note belongs to (written by mining)
WARM_PAIRS_FILE = "warm_pairs.parquet"  # held-out future co-occurrences of warm notes (data/warm.py), eval only
MANIFEST_FILE = "manifest.json"
REJECTS_DIR = "rejects"

# --- columns -------------------------------------------------------------------------------------------------
NOTE_ID = "note_id"
TITLE = "title"
CONTENT = "content"
HASHTAGS = "hashtags"  # list[str]
CATEGORY = "category"  # hierarchy levels joined by "/", e.g. "beer/brewing"
CREATED_AT = "created_at"  # optional, UTC timestamp
URL = "url"  # optional extra: a link to the note's source (attribution, e.g. Stack Exchange); http(s) only
NOTE_REQUIRED = (NOTE_ID, TITLE, CONTENT, HASHTAGS, CATEGORY)

USER_ID = "user_id"
TIMESTAMP = "timestamp"  # UTC timestamp
ACTION = "action"  # view, click, like, comment, answer, ask, ... (default click)
WEIGHT = "weight"  # float, default 1.0
EVENT_REQUIRED = (USER_ID, NOTE_ID, TIMESTAMP)
DEFAULT_ACTION = "click"

NOTE_ID_A = "note_id_a"  # the query / target note
NOTE_ID_B = "note_id_b"  # its related note (ground truth in evaluation)
SCORE = "score"
SPLIT = "split"  # "train" | "val" | "test" | "warm_holdout"
PAIR_COLUMNS = (NOTE_ID_A, NOTE_ID_B, SCORE, SPLIT)
SPLITS = ("train", "val", "test")
WARM_HOLDOUT = "warm_holdout"  # a train-split pair kept out of training for the warm-note evaluation (data/warm.py)
PAIR_SPLITS = (*SPLITS, WARM_HOLDOUT)

CATEGORY_SEPARATOR = "/"


@dataclass(frozen=True)
class Note:
    """One note as the model sees it (paper §1: title, hashtags, category, content)."""

    note_id: str
    title: str
    content: str
    hashtags: tuple[str, ...] = ()
    category: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def url(self) -> str:
        """The note's source link (`extra["url"]`) if it is an absolute http(s) URL, else "" (never a
        `javascript:` link, whatever wrote the note: everything that shows a link reads it here)."""
        value = self.extra.get(URL) if self.extra else None
        return value if isinstance(value, str) and value and url_problem(value) is None else ""

    @property
    def category_levels(self) -> tuple[str, ...]:
        return tuple(level for level in self.category.split(CATEGORY_SEPARATOR) if level)

    # --- the one Note <-> dict codec (notes frames, a service's log and API, any JSON store) -----------------
    def to_dict(self, extra: Iterable[str] | None = None) -> dict[str, Any]:
        """The canonical fields (hashtags as a list) plus `extra`: all of `Note.extra` (None) or only the named keys
        that the note has. JSON-able whenever the extras are."""
        row: dict[str, Any] = {NOTE_ID: self.note_id, TITLE: self.title, CONTENT: self.content,
                               HASHTAGS: list(self.hashtags), CATEGORY: self.category}
        kept = self.extra if extra is None else {k: self.extra[k] for k in extra if k in self.extra}
        row.update({k: v for k, v in kept.items() if k not in NOTE_REQUIRED})
        return row

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], extra: Iterable[str] | None = None) -> Note:
        """The inverse of `to_dict`: `note_id` is required, the other canonical fields default to empty; every other
        key goes to `Note.extra` (None) or only the named ones. Hashtags may be a list, tuple, array or missing."""
        if data.get(NOTE_ID) is None:
            raise ValueError(f"a note needs a {NOTE_ID!r}; got keys {sorted(data)}")
        keys = [k for k in data if k not in NOTE_REQUIRED] if extra is None else [k for k in extra if k in data]
        return cls(note_id=str(data[NOTE_ID]), title=str(data.get(TITLE, "")), content=str(data.get(CONTENT, "")),
                   hashtags=tag_tuple(data.get(HASHTAGS)), category=str(data.get(CATEGORY, "")),
                   extra={k: data[k] for k in keys})


def tag_tuple(value: Any) -> tuple[str, ...]:
    """Hashtags as read from any store: a list, tuple or array of strings; None / NaN (a missing cell) -> ()."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    if isinstance(value, (str, bytes)):  # would iterate characters; a store keeping JSON text must decode it first
        raise ValueError(f"hashtags must be a list of strings, got the string {value!r}")
    return tuple(str(v) for v in value)
