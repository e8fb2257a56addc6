"""The warm-note holdout: a time split of the behaviour log, so behaviour baselines (ItemCF) can be judged fairly.

The main evaluation splits by note: no test note has any training behaviour, which is the cold-start question
NoteLLM answers, and where ItemCF is exactly random. The paper's ItemCF comparison is about *warm* notes: notes
with past behaviour, asked to predict new co-occurrences. This module cuts the log at a time t0:

- t0 = the `quantile` of event timestamps; events before t0 are the history, events from t0 on the future.
- Warm notes: notes with at least one history event (ItemCF has a row for them).
- Held-out warm pairs: pairs mined (same `MiningConfig`) from the future events alone, whose two notes are warm,
  and that did not co-occur in the history (mined from history events, either direction): new relations that
  history-only behaviour must predict. This is the evaluation set; its pool is every warm note.
- Fair training: for the notes of the held-out pairs, training keeps only pairs that co-occurred in the history too,
  i.e. what ItemCF sees; every other training pair of theirs is relabelled `warm_holdout`, as are the held-out
  pairs themselves. Pairs of all other notes are untouched, so the cold (note-disjoint) evaluation is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from notellm.data import schema as S
from notellm.data.mining import MiningConfig, mine_pairs


@dataclass
class WarmHoldoutConfig:
    """Where the behaviour log is cut for the warm-note evaluation."""

    quantile: float = 0.6
    """t0 = this quantile of the event timestamps (0 turns the holdout off)."""
    min_pairs: int = 10
    """Below this many held-out pairs the holdout is skipped (too few queries to measure anything)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.quantile < 1.0:
            raise ValueError(f"warm holdout quantile must be in [0, 1), got {self.quantile}")
        if self.min_pairs < 1:
            raise ValueError(f"warm holdout min_pairs must be >= 1, got {self.min_pairs}")


@dataclass
class WarmHoldout:
    t0: pd.Timestamp
    pairs: pd.DataFrame  # note_id_a, note_id_b, score: the held-out (future, new, warm) pairs
    warm_note_ids: list[str]  # notes with history events: the evaluation pool
    held_out: np.ndarray  # bool per row of the mined pairs given: training must not see these


def _unordered(a: pd.Series, b: pd.Series) -> pd.Series:
    a, b = a.astype(str), b.astype(str)
    return pd.Series(np.where(a < b, a + "\x1f" + b, b + "\x1f" + a), index=a.index)


def split_at(events: pd.DataFrame, quantile: float) -> tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    """(t0, history = events before t0, future = events at or after t0)."""
    times = pd.to_datetime(events[S.TIMESTAMP], utc=True)
    t0 = times.quantile(quantile)
    history = times < t0
    return t0, events[history], events[~history]


def warm_holdout(events: pd.DataFrame, notes: pd.DataFrame, pairs: pd.DataFrame, mining: MiningConfig,
                 cfg: WarmHoldoutConfig) -> tuple[WarmHoldout | None, str]:
    """The held-out warm pairs and which rows of the mined `pairs` training must not see, or (None, why not)."""
    times = pd.to_datetime(events[S.TIMESTAMP], utc=True)

    def mine_side(t0: pd.Timestamp, before: bool) -> tuple[pd.DataFrame, set[str]]:
        side = events[(times < t0) if before else (times >= t0)]
        return mine_pairs(side, notes, mining), set(side[S.NOTE_ID].astype(str))

    return warm_holdout_with(times, mine_side, pairs, cfg)


def warm_holdout_with(
    times: pd.Series,
    mine_side: Callable[[pd.Timestamp, bool], tuple[pd.DataFrame, set[str]]],
    pairs: pd.DataFrame,
    cfg: WarmHoldoutConfig,
) -> tuple[WarmHoldout | None, str]:
    """`warm_holdout` for any mining engine.

    Args:
        times: the timestamp of every event (UTC), for t0.
        mine_side: (t0, before) -> (pairs mined from the events before t0 (before=True) or at/after t0, and the
            note ids those events touch).
        pairs: the pairs mined from the whole log.
    """
    if cfg.quantile == 0:
        return None, "turned off (quantile 0)"
    if times.empty or times.nunique() < 2:
        return None, "the events carry fewer than two distinct timestamps: no time to split at"
    t0 = times.quantile(cfg.quantile)
    history_pairs, warm = mine_side(t0, True)
    future_pairs, _ = mine_side(t0, False)
    past = set(_unordered(*(history_pairs[c] for c in (S.NOTE_ID_A, S.NOTE_ID_B))))
    a, b = future_pairs[S.NOTE_ID_A].astype(str), future_pairs[S.NOTE_ID_B].astype(str)
    keep = a.isin(warm) & b.isin(warm) & ~_unordered(a, b).isin(past)
    held = future_pairs.loc[keep, [S.NOTE_ID_A, S.NOTE_ID_B, S.SCORE]].reset_index(drop=True)
    if len(held) < cfg.min_pairs:
        return None, (f"only {len(held)} new co-occurrences after t0 = {t0} between notes with earlier behaviour "
                      f"(fewer than {cfg.min_pairs})")
    touched = set(held[S.NOTE_ID_A].astype(str)) | set(held[S.NOTE_ID_B].astype(str))
    ta, tb = pairs[S.NOTE_ID_A].astype(str), pairs[S.NOTE_ID_B].astype(str)
    held_out = ((ta.isin(touched) | tb.isin(touched)) & ~_unordered(ta, tb).isin(past)).to_numpy()
    return WarmHoldout(t0=t0, pairs=held, warm_note_ids=sorted(warm), held_out=held_out), ""
