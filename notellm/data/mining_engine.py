"""One interface over the pair-mining engines: pandas (in memory), DuckDB (out of core), Spark (a cluster).

An engine does the heavy, engine-specific part of mining (method §3, rules in mining.py): filter the log, order
each user's events, score s(A→B) = Σ 1/N_u, bound by [l, u], keep the top t per source note. Everything after
that is engine-independent and shared (`finish_pairs`: canonical order and the seeded category balancing; then the
note split and the warm holdout in prepare.py), so the engines cannot drift apart there.

Every engine sees the same events (a `TimeRange` restricts them for the warm holdout) and returns pairs as note
codes (positions in the sorted note ids, whose order is the ids' order); `mine_with_engine` finishes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from notellm.data import schema as S
from notellm.data.mining import MiningConfig, finish_pairs, sorted_note_ids, top_pairs_pandas

EngineName = Literal["pandas", "duckdb", "spark"]
ENGINES: tuple[str, ...] = ("pandas", "duckdb", "spark")


@dataclass(frozen=True)
class TimeRange:
    """Only events with start <= timestamp < end count (ns since the epoch; None = unbounded)."""

    start_ns: int | None = None
    end_ns: int | None = None

    def sql_conditions(self, column: str = "ts") -> list[str]:
        """The bounds as SQL conditions on `column` (AND them; none when unbounded), for the SQL engines."""
        bounds = [(">=", self.start_ns), ("<", self.end_ns)]
        return [f"{column} {op} {int(ns)}" for op, ns in bounds if ns is not None]


@dataclass
class DuckDBSettings:
    """How the DuckDB engine runs: memory is bounded and it spills to `temp_directory` beyond that."""

    memory_limit: str = "4GB"
    """DuckDB's memory_limit ("4GB", "500MB"): past it, joins and aggregations spill to disk."""
    temp_directory: str | None = None
    """Where spilled data goes (default: a temporary folder removed afterwards)."""
    threads: int | None = None
    """Worker threads (None: DuckDB's default, one per core)."""


@dataclass
class SparkSettings:
    """How the Spark engine connects: any master URL and session settings."""

    master: str = "local[2]"
    """local[N], spark://host:7077, yarn, k8s://..."""
    conf: dict[str, str] = field(default_factory=dict)
    """Extra session settings (spark.executor.memory, spark.sql.shuffle.partitions, ...)."""
    events: str | None = None
    """Events to read instead of the data folder's events.parquet: a Parquet/CSV/JSONL path (or folder of Parquet)
    or a table name the session knows."""


class PairEngine(Protocol):
    """What an engine does: top-t scored pairs of (a part of) the log, and the log's timestamps."""

    name: str

    def top_pairs(self, cfg: MiningConfig, time_range: TimeRange | None = None
                  ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Columns a, b (note codes) and score after bounds and top t, any row order; the step counts."""

    def event_times_ns(self) -> np.ndarray:
        """The timestamp (ns) of every event, for the warm holdout's cut (collected on the driver)."""

    def event_note_ids(self, time_range: TimeRange) -> set[str]:
        """Distinct note ids of the events inside `time_range` (the warm notes of the holdout)."""

    def close(self) -> None: ...


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
