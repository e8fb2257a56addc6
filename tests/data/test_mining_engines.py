"""The three mining engines (pandas, DuckDB, Spark) give exactly the same pairs, scores (1e-9), counts and splits.

Generated logs have equal timestamps, repeated events, single-event users, unknown notes, several actions and
weights; the shipped Stack Exchange data goes through `mine_and_split` end to end (warm holdout included).
Spark runs on local[2] with one session for the whole test run and few examples (each costs seconds).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import hypothesis.strategies as st
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from notellm.data import schema as S
from notellm.data.mining import MiningConfig, mine_pairs_with_stats, sorted_note_ids
from notellm.data.mining_engine import DuckDBSettings, SparkSettings, mine_with_engine
from notellm.data.splits import SplitConfig, assign_pair_splits, split_notes

T0 = pd.Timestamp("2024-01-01", tz="UTC")
NOTES = [f"n{i}" for i in range(8)] + ["N'x", "ü"]  # upper case, a quote and non-ASCII sort as Python sorts them


@st.composite
def logs(draw) -> pd.DataFrame:
    n = draw(st.integers(0, 40))
    rows = draw(st.lists(st.tuples(
        st.sampled_from([f"u{i}" for i in range(6)]),
        st.sampled_from([*NOTES, "unknown"]),
        st.integers(0, 6),  # few distinct seconds: many equal timestamps
        st.sampled_from(["click", "like"]),
        st.sampled_from([0.5, 1.0, 2.0]),
    ), min_size=n, max_size=n))
    if rows and draw(st.booleans()):
        rows += rows[: draw(st.integers(1, len(rows)))]  # exact duplicates, later in the file
    df = pd.DataFrame(rows, columns=["user_id", "note_id", "t", "action", "weight"])
    df.insert(2, "timestamp", T0 + pd.to_timedelta(df.pop("t").astype("int64"), unit="s"))
    return df


@st.composite
def configs(draw) -> MiningConfig:
    window = draw(st.sampled_from([1, 2, 3, None]))
    max_gap = draw(st.sampled_from([None, "2s"] if window is not None else ["2s", "4s"]))
    lower, upper = draw(st.sampled_from([(0.0, 30.0), (0.2, 30.0), (0.0, 0.9)]))
    return MiningConfig(
        window=window, max_gap=max_gap, lower=lower, upper=upper, top_t=draw(st.integers(1, 3)),
        actions=draw(st.sampled_from([None, ["click"]])), use_weights=draw(st.booleans()),
        symmetric=draw(st.booleans()), balance_per_combination=draw(st.sampled_from([None, 1, 2])),
        max_events_per_user=draw(st.sampled_from([None, 2, 3])), seed=draw(st.integers(0, 3)))


def _notes() -> pd.DataFrame:
    return pd.DataFrame({S.NOTE_ID: NOTES, S.CATEGORY: ["a/x", "a/y", "b", "b", "c", "a/x", "b", "c", "c", "a/y"]})


def _engine(name: str, events_path: Path, notes: pd.DataFrame):
    note_ids = sorted_note_ids(notes)
    if name == "duckdb":
        from notellm.data.mining_duckdb import DuckDBEngine

        return DuckDBEngine(events_path, note_ids, DuckDBSettings(memory_limit="256MB", threads=1))
    from notellm.data.mining_spark import SparkEngine

    return SparkEngine(str(events_path), note_ids, SparkSettings())


def _assert_same(events: pd.DataFrame, cfg: MiningConfig, engine_name: str, tmp: Path) -> None:
    notes = _notes()
    path = tmp / "events.parquet"
    events.to_parquet(path, index=False)
    want, want_stats = mine_pairs_with_stats(pd.read_parquet(path), notes, cfg)
    engine = _engine(engine_name, path, notes)
    try:
        got, got_stats = mine_with_engine(engine, notes, cfg)
    finally:
        engine.close()
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=0, atol=1e-9)
    assert got_stats == want_stats
    splits = split_notes(notes, SplitConfig(val_frac=0.3, test_frac=0.3, seed=cfg.seed))
    got_split, got_dropped = assign_pair_splits(got, splits)
    want_split, want_dropped = assign_pair_splits(want, splits)
    pd.testing.assert_frame_equal(got_split, want_split, check_exact=False, rtol=0, atol=1e-9)
    assert got_dropped == want_dropped


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=logs(), cfg=configs())
def test_duckdb_matches_pandas(events, cfg, tmp_path):
    _assert_same(events, cfg, "duckdb", tmp_path)


@pytest.mark.spark
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=logs(), cfg=configs())
def test_spark_matches_pandas(spark, events, cfg, tmp_path):
    _assert_same(events, cfg, "spark", tmp_path)


ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


@pytest.mark.parametrize("engine", ENGINES)
def test_hand_built_ties_duplicates_and_cap(engine, tmp_path, request):
    """Equal timestamps keep file order; repeats vote once; the cap keeps each user's first events."""
    rows = [("u1", "n1", 0), ("u1", "n3", 0), ("u1", "n2", 0), ("u1", "n3", 1), ("u1", "n0", 9),  # ties: file order
            ("u2", "n1", 5), ("u2", "n2", 5), ("u2", "n1", 5), ("u2", "n2", 5),  # a repeated A->B
            ("u3", "n4", 1)]  # a single-event user
    events = pd.DataFrame(rows, columns=["user_id", "note_id", "t"])
    events.insert(2, "timestamp", T0 + pd.to_timedelta(events.pop("t"), unit="s"))
    events["action"], events["weight"] = "click", 1.0
    cfg = MiningConfig(window=1, lower=0.0, max_events_per_user=4)
    want, stats = mine_pairs_with_stats(events, _notes(), cfg)
    # u1 keeps n1 n3 n2 n3 (N=3): n1->n3, n3->n2, n2->n3 at 1/3; u2: n1->n2 (once), n2->n1 at 1/2.
    assert {(a, b): s for a, b, s in want.itertuples(index=False)} == {
        ("n1", "n3"): round(1 / 3, 9), ("n3", "n2"): round(1 / 3, 9), ("n2", "n3"): round(1 / 3, 9),
        ("n1", "n2"): 0.5, ("n2", "n1"): 0.5}
    assert stats["events_over_user_cap"] == 1 and stats["users_capped"] == 1 and stats["users"] == 3
    if engine == "spark":
        request.getfixturevalue("spark")
    _assert_same(events, cfg, engine, tmp_path)


@pytest.mark.parametrize("engine", ENGINES)
def test_stackexchange_mine_and_split_identical(engine, shipped_import, tmp_path, request):
    """The shipped data through `mine_and_split`: same pairs.parquet, note splits, warm pairs and manifest counts."""
    from notellm.data.prepare import mine_and_split
    from notellm.data.warm import WarmHoldoutConfig

    if engine == "spark":
        request.getfixturevalue("spark")
    base, other = tmp_path / "pandas", tmp_path / engine
    shutil.copytree(shipped_import[0], base)  # the session's import of the shipped dumps
    shutil.copytree(shipped_import[0], other)
    mining = MiningConfig(max_gap="30d", balance_per_combination=400, max_events_per_user=60)
    warm = WarmHoldoutConfig(quantile=0.6)
    want = mine_and_split(base, mining, progress=False, warm_cfg=warm)
    got = mine_and_split(other, mining, progress=False, warm_cfg=warm, engine=engine,
                         duckdb=DuckDBSettings(memory_limit="512MB"))
    for name in (S.PAIRS_FILE, S.NOTE_SPLITS_FILE, S.WARM_PAIRS_FILE):
        pd.testing.assert_frame_equal(pd.read_parquet(other / name), pd.read_parquet(base / name),
                                      check_exact=False, rtol=0, atol=1e-9)
    for key in ("stats", "pairs_per_split", "notes_per_split", "dropped_crossing_splits", "warm_holdout"):
        assert got[key] == want[key], key
    assert json.loads((other / S.MANIFEST_FILE).read_text())["mining"]["engine"] == engine
    assert want["stats"]["events_over_user_cap"] > 0 and want["stats"]["pairs"] > 1_000


@pytest.mark.spark
def test_spark_reads_jsonl_and_csv_events(spark, tmp_path):
    """Spark mines a JSONL or CSV log (ISO and Unix-second timestamps) to the pandas engine's pairs."""
    events = pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2", "u2"], "note_id": ["n1", "n2", "n3", "n2", "n3"],
                           "timestamp": ["2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", "2024-01-01T00:00:01Z",
                                         "1704067200", "1704067205"]})
    from notellm.data.mining_spark import SparkEngine
    from notellm.data.validate import parse_timestamps

    reference = events.assign(timestamp=parse_timestamps(events["timestamp"])[0])
    cfg = MiningConfig(lower=0.0)
    want, _ = mine_pairs_with_stats(reference, _notes(), cfg)
    for path in (tmp_path / "e.jsonl", tmp_path / "e.csv"):
        events.to_json(path, orient="records", lines=True) if path.suffix == ".jsonl" else events.to_csv(path,
                                                                                                         index=False)
        engine = SparkEngine(str(path), sorted_note_ids(_notes()), SparkSettings())
        got, _ = mine_with_engine(engine, _notes(), cfg)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=0, atol=1e-9)


@pytest.mark.spark
def test_spark_rejects_events_without_required_columns(spark, tmp_path):
    from notellm.data.mining_spark import SparkEngine

    path = tmp_path / "e.csv"
    pd.DataFrame({"user_id": ["u"], "note": ["n1"], "timestamp": ["2024-01-01"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="no note_id column"):
        SparkEngine(str(path), sorted_note_ids(_notes()), SparkSettings())


def test_cap_is_validated():
    with pytest.raises(ValueError, match="max_events_per_user"):
        MiningConfig(max_events_per_user=1)
