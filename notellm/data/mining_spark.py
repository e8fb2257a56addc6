"""The Spark mining engine: the rule in Spark SQL (mining_sql.py), on any master (local[N], standalone, YARN, k8s).

Events come from the data folder's events.parquet or any Parquet/CSV/JSONL path or table the session can read,
with columns user_id, note_id, timestamp [, action, weight]. Timestamps: Parquet TIMESTAMP(NANOS) (notellm's own
files) exactly, Spark timestamps, ISO 8601 strings (naive = UTC) or Unix seconds. Equal timestamps keep file order
(file path, then row: `_metadata.row_index` for Parquet, the scan order otherwise), which for a single file is the
order the pandas engine keeps. A user's events sit in one partition (a window by user); cap heavy users with
`max_events_per_user`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from notellm.data import schema as S
from notellm.data.mining import MiningConfig
from notellm.data.mining_base import SparkSettings, TimeRange
from notellm.data.mining_sql import SPARK, known_notes_frame, mine_sql
from notellm.spark_session import spark_session

_FILE_READERS = {".parquet": "parquet", ".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json",
                 ".ndjson": "json"}


def _parquet_ts_is_nanos(path: str) -> bool:
    """Whether a local Parquet file/folder stores `timestamp` as TIMESTAMP(NANOS) (read by Spark as a long)."""
    try:
        import pyarrow.dataset as ds

        field = ds.dataset(path, format="parquet").schema.field(S.TIMESTAMP)
    except (OSError, ValueError, KeyError):
        return True  # not readable from here (a cluster path): notellm's own Parquet files are nanoseconds
    return str(field.type).startswith("timestamp[ns")


class SparkEngine:
    """Pair mining with Spark SQL."""

    name = "spark"

    def __init__(self, events: str, note_ids: pd.Index, settings: SparkSettings):
        self.spark, self._created = spark_session(settings.master, settings.conf, "notellm-mine")
        self._cached: list[Any] = []
        self._load_events(events)
        self.spark.createDataFrame(known_notes_frame(note_ids)).createOrReplaceTempView("known_notes")

    def _load_events(self, source: str) -> None:
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        kind = "parquet" if Path(source).is_dir() else _FILE_READERS.get(Path(source).suffix.lower())
        if kind is None and ("/" in source or Path(source).exists()):
            raise ValueError(f"events {source!r}: not a .parquet/.csv/.tsv/.jsonl file, a Parquet folder or a table")
        if kind is None:
            df = self.spark.table(source)
            rid_file, rid = F.lit(""), F.monotonically_increasing_id()
        else:
            reader = self.spark.read
            if kind == "csv":
                reader = reader.option("header", True).option("sep", "\t" if source.endswith(".tsv") else ",")
            df = getattr(reader, kind)(source)
            rid_file = F.col("_metadata.file_path")
            rid = F.col("_metadata.row_index") if kind == "parquet" else F.monotonically_increasing_id()
        missing = [c for c in S.EVENT_REQUIRED if c not in df.columns]
        if missing:
            raise ValueError(f"events {source!r} have no {', '.join(missing)} column (columns: {df.columns})")
        ts_type = df.schema[S.TIMESTAMP].dataType
        ts = F.col(S.TIMESTAMP)
        if isinstance(ts_type, T.LongType) and kind == "parquet" and _parquet_ts_is_nanos(source):
            ts_ns = ts
        elif isinstance(ts_type, (T.TimestampType, T.TimestampNTZType)):
            ts_ns = F.unix_micros(ts.cast("timestamp")) * 1000
        elif isinstance(ts_type, T.NumericType):
            ts_ns = (ts.cast("double") * 1e9).cast("long")  # Unix seconds
        else:
            text = ts.cast("string")
            ts_ns = F.when(text.rlike(r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"), (text.cast("double") * 1e9).cast("long")
                           ).otherwise(F.unix_micros(text.cast("timestamp")) * 1000)
        raw = df.select(
            F.col(S.USER_ID).cast("string").alias("u"),
            F.col(S.NOTE_ID).cast("string").alias("note"),
            ts_ns.alias("ts"),
            rid_file.alias("rid_file"),
            rid.alias("rid"),
            (F.col(S.ACTION).cast("string") if S.ACTION in df.columns else F.lit(S.DEFAULT_ACTION)).alias("action"),
            (F.col(S.WEIGHT).cast("double") if S.WEIGHT in df.columns else F.lit(1.0)).alias("w"),
        )
        raw.createOrReplaceTempView("events_all")
        bad = self.spark.sql("SELECT count(*) AS n, min(rid) AS example FROM events_all "
                             "WHERE u IS NULL OR note IS NULL OR ts IS NULL").collect()[0]
        if bad["n"]:
            raise ValueError(f"events {source!r}: {bad['n']} rows have an empty or unparsable user_id, note_id or "
                             f"timestamp (first at row {bad['example']}); fix or import them with `notellm import`")

    # --- SqlRunner ---------------------------------------------------------------------------------------
    def view(self, name: str, sql: str) -> None:
        self.spark.sql(sql).createOrReplaceTempView(name)

    def table(self, name: str, sql: str) -> None:
        from pyspark import StorageLevel

        df = self.spark.sql(sql).persist(StorageLevel.MEMORY_AND_DISK)
        self._cached.append(df)
        df.createOrReplaceTempView(name)

    def row(self, sql: str) -> tuple:
        return tuple(self.spark.sql(sql).collect()[0])

    def frame(self, sql: str) -> pd.DataFrame:
        return self.spark.sql(sql).toPandas()

    # --- PairEngine --------------------------------------------------------------------------------------
    def _raw_sql(self, time_range: TimeRange | None) -> str:
        where = time_range.sql_conditions() if time_range is not None else []
        return "SELECT * FROM events_all" + (" WHERE " + " AND ".join(where) if where else "")

    def top_pairs(self, cfg: MiningConfig, time_range: TimeRange | None = None
                  ) -> tuple[pd.DataFrame, dict[str, Any]]:
        self.view("raw", self._raw_sql(time_range))
        try:
            return mine_sql(self, SPARK, cfg)
        finally:
            for df in self._cached:
                df.unpersist()
            self._cached.clear()

    def event_times_ns(self) -> np.ndarray:
        return self.spark.sql("SELECT ts FROM events_all").toPandas()["ts"].to_numpy(np.int64)

    def event_note_ids(self, time_range: TimeRange) -> set[str]:
        return {r[0] for r in self.spark.sql(f"SELECT DISTINCT note FROM ({self._raw_sql(time_range)}) r").collect()}

    def close(self) -> None:
        if self._created:
            self.spark.stop()
