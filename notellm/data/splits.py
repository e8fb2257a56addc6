"""Split notes into train/val/test and give pairs the split of their notes; the paper code's eval dedup rule.

Splits are by NOTE, so no test (or validation) note ever appears in a training pair:
- `method="hash"` (default): a note's split is fixed by a hash of (seed, note id), so it is deterministic, does
  not depend on which other notes exist, and stays put when notes are added. Fractions are met in expectation.
- `method="time"`: the newest `test_frac` of notes (by `created_at`) are test, the next newest `val_frac` val, the
  rest train, like the paper's test pool from "the following month". Ties are ordered by note id.
A pair whose two notes fall in the same split gets that split; a pair that crosses splits is dropped and counted by
combination (e.g. "train|test") for the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from notellm.data import schema as S


@dataclass
class SplitConfig:
    """How notes are divided into train / val / test."""

    val_frac: float = 0.1
    """Fraction of notes in the validation split."""
    test_frac: float = 0.1
    """Fraction of notes in the test split."""
    seed: int = 0
    """Seed of the hash split (different seeds give independent splits)."""
    method: Literal["hash", "time"] = "hash"
    """"hash": by a hash of (seed, note id); "time": newest notes are test, then val (needs created_at)."""
    fold: int = 0
    """Which test window (hash method): fold f's test notes are those whose hash falls in
    [f·test_frac, (f+1)·test_frac), so folds 0 … ⌊1/test_frac⌋ − 1 have disjoint test notes (cross-validation)."""

    def __post_init__(self) -> None:
        for name in ("val_frac", "test_frac"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.val_frac + self.test_frac >= 1.0:
            raise ValueError(
                f"val_frac + test_frac must be < 1 (train needs notes), got {self.val_frac + self.test_frac}"
            )
        if self.method not in ("hash", "time"):
            raise ValueError(f"method must be 'hash' or 'time', got {self.method!r}")
        if self.fold < 0 or (self.fold and self.method != "hash"):
            raise ValueError(f"fold must be >= 0 and needs method 'hash', got fold {self.fold} ({self.method})")
        if self.fold and (self.fold + 1) * self.test_frac > 1.0 + 1e-9:
            raise ValueError(f"fold {self.fold} has no test window of its own: at test_frac {self.test_frac} there "
                             f"are {int(1.0 / self.test_frac + 1e-9)} disjoint folds")


def _hash_unit(note_ids: pd.Series, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per note id, fixed by (seed, id): SipHash via pandas, keyed by the seed."""
    key = f"{seed:016d}"[-16:]  # pandas wants a 16-character key
    hashed = pd.util.hash_pandas_object(note_ids.astype(str).reset_index(drop=True), index=False, hash_key=key)
    return (hashed.to_numpy(dtype=np.uint64) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def split_notes(notes_df: pd.DataFrame, cfg: SplitConfig) -> pd.Series:
    """The split ("train" | "val" | "test") of each note, as a Series indexed by note_id.

    Raises:
        ValueError: `method="time"` but `created_at` is missing or empty for some notes.
    """
    ids = notes_df[S.NOTE_ID].astype(str).reset_index(drop=True)
    split = np.full(len(ids), "train", dtype=object)
    if cfg.method == "hash":
        u = (_hash_unit(ids, cfg.seed) - cfg.fold * cfg.test_frac) % 1.0  # fold f's window moved to [0, test_frac)
        split[u < cfg.test_frac + cfg.val_frac] = "val"
        split[u < cfg.test_frac] = "test"
    else:
        if S.CREATED_AT not in notes_df.columns:
            raise ValueError("split method 'time' needs a created_at column in the notes; use method 'hash'")
        created = pd.to_datetime(notes_df[S.CREATED_AT], utc=True).reset_index(drop=True)
        if created.isna().any():
            raise ValueError(
                f"split method 'time': {int(created.isna().sum())} notes have no created_at, e.g. "
                f"{ids[created.isna()].iloc[0]!r}; fill them or use method 'hash'"
            )
        order = np.lexsort((ids.to_numpy(dtype=str), created.to_numpy(dtype="datetime64[ns]")))[::-1]  # newest 1st
        n_test = int(round(cfg.test_frac * len(ids)))
        n_val = int(round(cfg.val_frac * len(ids)))
        split[order[:n_test]] = "test"
        split[order[n_test : n_test + n_val]] = "val"
    return pd.Series(split, index=pd.Index(ids, name=S.NOTE_ID), name=S.SPLIT)


def assign_pair_splits(pairs_df: pd.DataFrame, note_splits: pd.Series) -> tuple[pd.DataFrame, dict[str, int]]:
    """Give each pair the split of its notes; drop pairs whose notes are in different splits.

    Args:
        pairs_df: note_id_a, note_id_b, ... (any existing `split` column is replaced).
        note_splits: split per note id (from `split_notes`).

    Returns:
        (pairs with a `split` column, {"train|test": n dropped, ...}); a pair with a note that has no split is
        dropped as "unknown".
    """
    split_a = note_splits.reindex(pairs_df[S.NOTE_ID_A].astype(str)).to_numpy(dtype=object)
    split_b = note_splits.reindex(pairs_df[S.NOTE_ID_B].astype(str)).to_numpy(dtype=object)
    unknown = pd.isna(split_a) | pd.isna(split_b)
    same = (split_a == split_b) & ~unknown
    dropped: dict[str, int] = {}
    if unknown.any():
        dropped["unknown"] = int(unknown.sum())
    crossing = ~same & ~unknown
    if crossing.any():
        combos = pd.Series([f"{x}|{y}" for x, y in zip(split_a[crossing], split_b[crossing], strict=True)])
        dropped.update({k: int(v) for k, v in combos.value_counts().sort_index().items()})
    out = pairs_df.loc[same].drop(columns=[S.SPLIT], errors="ignore").copy()
    out[S.SPLIT] = split_a[same].astype(str)
    return out.reset_index(drop=True), dropped


def dedup_pairs_code_rule(pairs_df: pd.DataFrame, known_note_ids: set[str] | None = None) -> pd.DataFrame:
    """The official evaluation's pair de-duplication (docs/method.md §5.2, `eval_recall.py`).

    Pairs are read in order; a pair is accepted only if neither of its notes appeared (as query or ground truth)
    in an earlier ACCEPTED pair, and, when `known_note_ids` is given (notes that have embeddings), both notes are
    in it. So every note is used at most once and each query has exactly one ground truth. Rejected pairs do not
    mark their notes as used.
    """
    seen: set[str] = set()
    keep = np.zeros(len(pairs_df), dtype=bool)
    # A sequential rule by definition (each decision depends on earlier accepted pairs), so a plain loop.
    for i, (a, b) in enumerate(zip(pairs_df[S.NOTE_ID_A].astype(str), pairs_df[S.NOTE_ID_B].astype(str), strict=True)):
        if known_note_ids is not None and (a not in known_note_ids or b not in known_note_ids):
            continue
        if a in seen or b in seen:
            continue
        seen.add(a)
        seen.add(b)
        keep[i] = True
    return pairs_df.loc[keep].reset_index(drop=True)
