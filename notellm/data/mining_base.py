"""What the pair-mining engines share: the engine names, the time range, each engine's settings and the protocol.

The registry (mining_engine.py: the pandas engine, `open_engine`, `mine_with_engine`) imports the engines
(mining_duckdb.py, mining_spark.py); the engines import only this module and the shared SQL (mining_sql.py), so
the imports run one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from notellm.data.mining import MiningConfig

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
