"""Mine pairs from a data folder's events and split them by note: the step `notellm mine` and the quickstart run.

Reads `notes.parquet` + `events.parquet`, mines pairs over the whole log (mining.py), assigns every note a split
(splits.py), keeps the pairs whose two notes share a split, and writes `pairs.parquet` (note_id_a, note_id_b,
score, split) and `note_splits.parquet` (note_id, split). The manifest gets a `mining` section with both configs,
the mining counts, notes and pairs per split, and the pairs dropped for crossing splits.

With a `WarmHoldoutConfig` (warm.py) it also cuts the log in time, writes the held-out warm pairs to
`warm_pairs.parquet` and relabels the training pairs the warm evaluation needs unseen to split `warm_holdout`;
the manifest's `warm_holdout` section records t0 and the counts, or why the holdout was skipped.

`engine` picks who mines (mining_engine.py: pandas in memory, DuckDB out of core, Spark on a cluster); the split,
the balancing and the warm holdout logic are shared, so every engine writes the same files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from notellm.config import to_dict
from notellm.data import schema as S
from notellm.data.artifacts import file_entry, read_manifest, update_manifest, write_parquet
from notellm.data.mining import MiningConfig
from notellm.data.mining_engine import (
    DuckDBSettings,
    PairEngine,
    SparkSettings,
    TimeRange,
    mine_with_engine,
    open_engine,
)
from notellm.data.splits import SplitConfig, assign_pair_splits, split_notes
from notellm.data.warm import WarmHoldout, WarmHoldoutConfig, warm_holdout_with


def mine_and_split(
    data_dir: str | Path,
    mining_cfg: MiningConfig | None = None,
    split_cfg: SplitConfig | None = None,
    progress: bool = True,
    warm_cfg: WarmHoldoutConfig | None = None,
    engine: str = "pandas",
    duckdb: DuckDBSettings | None = None,
    spark: SparkSettings | None = None,
) -> dict[str, Any]:
    """Mine, split and write pairs for a data folder; returns the manifest's new `mining` section.

    Raises:
        FileNotFoundError: the folder has no manifest, notes or events.
    """
    data_dir = Path(data_dir)
    mining_cfg = mining_cfg or MiningConfig()
    split_cfg = split_cfg or SplitConfig()
    read_manifest(data_dir)  # fails early, with a clear message, on a folder that was never imported
    own_events = engine == "spark" and spark is not None and spark.events is not None
    for name in (S.NOTES_FILE,) if own_events else (S.NOTES_FILE, S.EVENTS_FILE):
        if not (data_dir / name).is_file():
            raise FileNotFoundError(
                f"{data_dir / name} not found: mining needs notes and events "
                "(import with `notellm import files --notes F --events F`)"
            )
    started = time.perf_counter()
    available = pq.read_schema(data_dir / S.NOTES_FILE).names
    wanted = [c for c in (S.NOTE_ID, S.CATEGORY, S.CREATED_AT) if c in available]
    notes = pd.read_parquet(data_dir / S.NOTES_FILE, columns=wanted)  # titles and bodies are not needed here
    miner = open_engine(engine, data_dir, notes, progress=progress, duckdb=duckdb, spark=spark)
    try:
        pairs, stats = mine_with_engine(miner, notes, mining_cfg)
        note_splits = split_notes(notes, split_cfg)
        pairs, dropped = assign_pair_splits(pairs, note_splits)
        pairs = pairs[list(S.PAIR_COLUMNS)]
        holdout, why_not = (_warm_holdout(miner, notes, pairs, mining_cfg, warm_cfg) if warm_cfg
                            else (None, "not asked"))
    finally:
        miner.close()
    return _write(data_dir, mining_cfg, split_cfg, warm_cfg, engine, started, pairs, stats, note_splits, dropped,
                  holdout, why_not)


def _warm_holdout(miner: PairEngine, notes: pd.DataFrame, pairs: pd.DataFrame, mining_cfg: MiningConfig,
                  warm_cfg: WarmHoldoutConfig) -> tuple[WarmHoldout | None, str]:
    """The warm holdout with the same engine: t0 from every event's time, both sides mined by the engine."""
    times = pd.Series(pd.to_datetime(miner.event_times_ns(), unit="ns", utc=True))

    def mine_side(t0: pd.Timestamp, before: bool) -> tuple[pd.DataFrame, set[str]]:
        side = TimeRange(end_ns=t0.value) if before else TimeRange(start_ns=t0.value)
        return mine_with_engine(miner, notes, mining_cfg, side)[0], miner.event_note_ids(side)

    return warm_holdout_with(times, mine_side, pairs, warm_cfg)


def _write(data_dir: Path, mining_cfg: MiningConfig, split_cfg: SplitConfig, warm_cfg: WarmHoldoutConfig | None,
           engine: str, started: float, pairs: pd.DataFrame, stats: dict[str, Any], note_splits: pd.Series,
           dropped: dict[str, int], holdout: WarmHoldout | None, why_not: str) -> dict[str, Any]:
    """Write pairs, note splits and the warm pairs; record the `mining` section of the manifest."""
    files: dict[str, Any] = {}
    warm_section: dict[str, Any] = {"config": to_dict(warm_cfg) if warm_cfg else None}
    warm_path = data_dir / S.WARM_PAIRS_FILE
    if holdout is None:
        warm_path.unlink(missing_ok=True)  # a stale file from an earlier run must not be evaluated
        files[S.WARM_PAIRS_FILE] = None
        warm_section["skipped"] = why_not
    else:
        relabel = holdout.held_out & (pairs[S.SPLIT] == "train").to_numpy()
        pairs.loc[relabel, S.SPLIT] = S.WARM_HOLDOUT
        files[S.WARM_PAIRS_FILE] = file_entry(write_parquet(holdout.pairs, warm_path), len(holdout.pairs))
        warm_section.update({"t0": holdout.t0.isoformat(), "pairs": len(holdout.pairs),
                             "warm_notes": len(holdout.warm_note_ids),
                             "train_pairs_held_out": int(relabel.sum())})

    pairs_path = write_parquet(pairs, data_dir / S.PAIRS_FILE)
    splits_frame = note_splits.reset_index()
    splits_path = write_parquet(splits_frame, data_dir / S.NOTE_SPLITS_FILE)
    section = {
        "engine": engine,
        "mining_config": to_dict(mining_cfg),
        "split_config": to_dict(split_cfg),
        "stats": stats,
        "notes_per_split": {s: int((note_splits == s).sum()) for s in S.SPLITS},
        "pairs_per_split": {s: int((pairs[S.SPLIT] == s).sum()) for s in S.PAIR_SPLITS},
        "dropped_crossing_splits": dropped,
        "warm_holdout": warm_section,
        "seconds": round(time.perf_counter() - started, 3),
    }
    update_manifest(
        data_dir,
        "mining",
        section,
        files={
            S.PAIRS_FILE: file_entry(pairs_path, len(pairs)),
            S.NOTE_SPLITS_FILE: file_entry(splits_path, len(splits_frame)),
            **files,
        },
    )
    return section
