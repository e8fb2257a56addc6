"""One interface over the pair-mining engines: pandas (in memory), DuckDB (out of core), Spark (a cluster).

An engine does the heavy, engine-specific part of mining (method §3, rules in mining.py): filter the log, order
each user's events, score s(A→B) = Σ 1/N_u, bound by [l, u], keep the top t per source note. Everything after
that is engine-independent and shared (`finish_pairs`: canonical order and the seeded category balancing; then the
note split and the warm holdout in prepare.py), so the engines cannot drift apart there.

Every engine sees the same events (a `TimeRange` restricts them for the warm holdout) and returns pairs as note
codes (positions in the sorted note ids, whose order is the ids' order); `mine_with_engine` finishes them.
The shared pieces (settings, `TimeRange`, the `PairEngine` protocol) are in mining_base.py, which the engines
import; this registry imports the engines, lazily, so the imports run one way. Callers import from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from notellm.data import schema as S
from notellm.data.mining import MiningConfig, finish_pairs, sorted_note_ids, top_pairs_pandas
from notellm.data.mining_base import ENGINES, DuckDBSettings, EngineName, PairEngine, SparkSettings, TimeRange

__all__ = ["ENGINES", "DuckDBSettings", "EngineName", "PairEngine", "PandasEngine", "SparkSettings", "TimeRange",
           "mine_with_engine", "open_engine"]


class PandasEngine:
    """The reference engine: the whole log in memory (mining.py)."""

    name = "pandas"

    def __init__(self, events: pd.DataFrame, note_ids: pd.Index, progress: bool = False):
        self.events, self.note_ids, self.progress = events, note_ids, progress
        self._times = pd.to_datetime(events[S.TIMESTAMP], utc=True).dt.as_unit("ns").array.asi8

    def _select(self, time_range: TimeRange | None) -> pd.DataFrame:
        if time_range is None:
            return self.events
        keep = np.ones(len(self.events), bool)
        if time_range.start_ns is not None:
            keep &= self._times >= time_range.start_ns
        if time_range.end_ns is not None:
            keep &= self._times < time_range.end_ns
        return self.events[keep]

    def top_pairs(self, cfg: MiningConfig, time_range: TimeRange | None = None
                  ) -> tuple[pd.DataFrame, dict[str, Any]]:
        a, b, score, stats = top_pairs_pandas(self._select(time_range), self.note_ids, cfg, self.progress)
        return pd.DataFrame({"a": a, "b": b, "score": score}), stats

    def event_times_ns(self) -> np.ndarray:
        return self._times

    def event_note_ids(self, time_range: TimeRange) -> set[str]:
        return set(self._select(time_range)[S.NOTE_ID].astype(str))

    def close(self) -> None:
        pass


def mine_with_engine(engine: PairEngine, notes_df: pd.DataFrame, cfg: MiningConfig,
                     time_range: TimeRange | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Mine with `engine` and finish the pairs the shared way: the same result whichever engine ran."""
    note_ids = sorted_note_ids(notes_df)
    top, stats = engine.top_pairs(cfg, time_range)
    a, b = top["a"].to_numpy(np.int64), top["b"].to_numpy(np.int64)
    if len(a) and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= len(note_ids)):
        raise RuntimeError(f"engine {engine.name} returned note codes outside the notes table")
    score = top["score"].to_numpy(np.float64)
    return finish_pairs(a, b, score, notes_df, note_ids, cfg, stats), stats


def open_engine(name: str, data_dir: Path, notes_df: pd.DataFrame, *, progress: bool = False,
                duckdb: DuckDBSettings | None = None, spark: SparkSettings | None = None) -> PairEngine:
    """The engine `name` over the data folder's events (Spark: or `spark.events`)."""
    events_path = Path(data_dir) / S.EVENTS_FILE
    note_ids = sorted_note_ids(notes_df)
    if name == "pandas":
        return PandasEngine(pd.read_parquet(events_path), note_ids, progress)
    if name == "duckdb":
        from notellm.data.mining_duckdb import DuckDBEngine

        return DuckDBEngine(events_path, note_ids, duckdb or DuckDBSettings())
    if name == "spark":
        from notellm.data.mining_spark import SparkEngine

        settings = spark or SparkSettings()
        return SparkEngine(settings.events or str(events_path), note_ids, settings)
    raise ValueError(f"unknown mining engine {name!r}; choose one of {', '.join(ENGINES)}")
