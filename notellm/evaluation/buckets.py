"""Bucket pool notes for the retrieval breakdowns: warm/cold, short/long, exposure, category.

- warm / cold (query side): a query note is *warm* if it appears in any training pair, *cold* otherwise. On a
  note-disjoint split (the default) every test note is cold, so this breakdown only separates buckets when a user's
  split lets test notes carry training pairs.
- short / long (query side): note length in characters (title + content) below / at-or-above the pool median.
- exposure (ground-truth side, like the paper's Table 3): events per note over the whole log. low = the bottom 30%
  of pool notes by exposure, high = the top 10%, mid = the rest (the paper's thresholds, 1,500 and 75,000 views,
  cut its test notes at exactly these shares). Ties at a cut are broken by note id so bucket sizes stay exact.
- category (query side): the first category level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from notellm.data.schema import CATEGORY, CATEGORY_SEPARATOR, CONTENT, NOTE_ID, NOTE_ID_A, NOTE_ID_B, TITLE

LOW_SHARE, HIGH_SHARE = 0.30, 0.10


def exposure_buckets(pool_ids: list[str], events: pd.DataFrame | None) -> dict[str, str]:
    """low (bottom 30%) / mid / high (top 10%) of pool notes by event count."""
    counts = pd.Series(0, index=pd.Index([str(p) for p in pool_ids], name=NOTE_ID), dtype=np.int64)
    if events is not None and len(events):
        per_note = events[NOTE_ID].astype(str).value_counts()
        counts = per_note.reindex(counts.index, fill_value=0).astype(np.int64)
    order = sorted(counts.index, key=lambda n: (counts[n], n))  # ascending exposure, ties by id
    n = len(order)
    n_low, n_high = int(round(LOW_SHARE * n)), int(round(HIGH_SHARE * n))
    out = {}
    for i, note_id in enumerate(order):
        out[note_id] = "low" if i < n_low else ("high" if i >= n - n_high else "mid")
    return out


def length_buckets(notes: pd.DataFrame, pool_ids: list[str]) -> dict[str, str]:
    df = notes.set_index(notes[NOTE_ID].astype(str)).loc[[str(p) for p in pool_ids]]
    length = df[TITLE].fillna("").str.len() + df[CONTENT].fillna("").str.len()
    median = float(length.median())
    return {i: ("short" if v < median else "long") for i, v in length.items()}


def warm_cold_buckets(pool_ids: list[str], train_pairs: pd.DataFrame | None) -> dict[str, str]:
    warm: set[str] = set()
    if train_pairs is not None and len(train_pairs):
        warm = set(train_pairs[NOTE_ID_A].astype(str)) | set(train_pairs[NOTE_ID_B].astype(str))
    return {str(p): ("warm" if str(p) in warm else "cold") for p in pool_ids}


def category_buckets(notes: pd.DataFrame, pool_ids: list[str]) -> dict[str, str]:
    df = notes.set_index(notes[NOTE_ID].astype(str)).loc[[str(p) for p in pool_ids]]
    return {i: (str(c).split(CATEGORY_SEPARATOR)[0] or "(none)") for i, c in df[CATEGORY].fillna("").items()}


def standard_breakdowns(
    notes: pd.DataFrame, pool_ids: list[str], events: pd.DataFrame | None, train_pairs: pd.DataFrame | None
) -> dict[str, tuple[str, dict[str, str]]]:
    """All four breakdowns in the form `protocol.evaluate_queries` takes: name -> (side, {note_id: bucket})."""
    return {
        "warm_cold": ("query", warm_cold_buckets(pool_ids, train_pairs)),
        "length": ("query", length_buckets(notes, pool_ids)),
        "exposure": ("truth", exposure_buckets(pool_ids, events)),
        "category": ("query", category_buckets(notes, pool_ids)),
    }
