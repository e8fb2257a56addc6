"""The DuckDB mining engine: the rule in SQL (mining_sql.py) over the events Parquet, in bounded memory.

DuckDB runs in this process, streams the Parquet file and spills joins, windows and aggregations to
`temp_directory` beyond `memory_limit`, so a log larger than memory mines on one machine. Event order for equal
timestamps is the file's row order (`file_row_number`), the order the pandas engine keeps.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from notellm.data import schema as S
from notellm.data.mining import MiningConfig
from notellm.data.mining_base import DuckDBSettings, TimeRange
from notellm.data.mining_sql import DUCKDB, known_notes_frame, mine_sql


class DuckDBEngine:
    """Pair mining on DuckDB over one events Parquet file (or a glob of them)."""

    name = "duckdb"

    def __init__(self, events_path: str | Path, note_ids: pd.Index, settings: DuckDBSettings):
        import duckdb

        self.events_path = str(events_path)
        self._own_temp = settings.temp_directory is None
        self.temp_dir = tempfile.mkdtemp(prefix="notellm-duckdb-") if self._own_temp else settings.temp_directory
        self.con = duckdb.connect(config={"memory_limit": settings.memory_limit, "temp_directory": self.temp_dir,
                                          "preserve_insertion_order": False,
                                          **({"threads": settings.threads} if settings.threads else {})})
        self.con.register("known_notes_df", known_notes_frame(note_ids))
        self.con.execute("CREATE TEMP TABLE known_notes AS SELECT note, code FROM known_notes_df")
        self.con.unregister("known_notes_df")
        self._columns = {r[0] for r in self.con.execute(
            "DESCRIBE SELECT * FROM read_parquet(?)", [self.events_path]).fetchall()}
        for column in S.EVENT_REQUIRED:
            if column not in self._columns:
                raise ValueError(f"{self.events_path} has no {column!r} column (columns: {sorted(self._columns)})")

    def _raw_sql(self, time_range: TimeRange | None) -> str:
        action = "CAST(action AS VARCHAR)" if S.ACTION in self._columns else f"'{S.DEFAULT_ACTION}'"
        weight = "CAST(weight AS DOUBLE)" if S.WEIGHT in self._columns else "CAST(1 AS DOUBLE)"
        where = time_range.sql_conditions() if time_range is not None else []
        path = self.events_path.replace("'", "''")
        return (f"SELECT * FROM (SELECT user_id AS u, CAST(note_id AS VARCHAR) AS note, epoch_ns(timestamp) AS ts, "
                f"filename AS rid_file, file_row_number AS rid, {action} AS action, {weight} AS w "
                f"FROM read_parquet('{path}', filename = true, file_row_number = true)) r"
                + (" WHERE " + " AND ".join(where) if where else ""))

    # --- SqlRunner ---------------------------------------------------------------------------------------
    def view(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def table(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def row(self, sql: str) -> tuple:
        return self.con.execute(sql).fetchone()

    def frame(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).df()

    # --- PairEngine --------------------------------------------------------------------------------------
    def top_pairs(self, cfg: MiningConfig, time_range: TimeRange | None = None
                  ) -> tuple[pd.DataFrame, dict[str, Any]]:
        self.view("raw", self._raw_sql(time_range))
        try:
            return mine_sql(self, DUCKDB, cfg)
        finally:
            for name in ("ranked", "ev", "scored"):
                self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def event_times_ns(self) -> np.ndarray:
        got = self.con.execute(f"SELECT ts FROM ({self._raw_sql(None)}) r").fetchnumpy()["ts"]
        return np.asarray(got, dtype=np.int64)

    def event_note_ids(self, time_range: TimeRange) -> set[str]:
        rows = self.con.execute(f"SELECT DISTINCT note FROM ({self._raw_sql(time_range)}) r").fetchall()
        return {r[0] for r in rows}

    def close(self) -> None:
        self.con.close()
        if self._own_temp:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
