"""The warm-note holdout (time split of the log) on a hand-built log: t0, the held-out pairs, which training pairs
training must not see, and what `notellm mine --warm-quantile` writes (and removes when the holdout is off).
Run: PYTHONPATH=. python -m pytest tests/data/test_warm.py -q"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from notellm.data import schema as S
from notellm.data.mining import MiningConfig
from notellm.data.warm import WarmHoldoutConfig, warm_holdout

# history (days 1-4): u1 reads n1 then n2; u2 reads n3; u3 reads n5.
# future (days 10-15): u4 reads n1 then n3 (new, both warm), u5 n1 then n2 (co-occurred before),
# u6 n3 then n6 (n6 has no history).
EVENTS = [("u1", "n1", 1), ("u1", "n2", 2), ("u2", "n3", 3), ("u3", "n5", 4),
          ("u4", "n1", 10), ("u4", "n3", 11), ("u5", "n1", 12), ("u5", "n2", 13), ("u6", "n3", 14), ("u6", "n6", 15)]
NOTES = [f"n{i}" for i in range(1, 7)]


def _events() -> pd.DataFrame:
    return pd.DataFrame({S.USER_ID: [u for u, _, _ in EVENTS], S.NOTE_ID: [n for _, n, _ in EVENTS],
                         S.TIMESTAMP: [pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=d)
                                       for _, _, d in EVENTS]})


def _notes() -> pd.DataFrame:
    return pd.DataFrame({S.NOTE_ID: NOTES, S.CATEGORY: ["c"] * len(NOTES)})


def test_held_out_pairs_and_training_rows():
    # 10 events, quantile 0.4: t0 falls between the 4th and 5th event times, so the history is days 1-4.
    train = pd.DataFrame({S.NOTE_ID_A: ["n1", "n1", "n3", "n5", "n2"], S.NOTE_ID_B: ["n3", "n2", "n6", "n4", "n1"]})
    holdout, why = warm_holdout(_events(), _notes(), train, MiningConfig(), WarmHoldoutConfig(0.4, min_pairs=1))
    assert why == "" and holdout is not None
    assert pd.Timestamp("2024-01-05", tz="UTC") < holdout.t0 < pd.Timestamp("2024-01-11", tz="UTC")
    assert holdout.warm_note_ids == ["n1", "n2", "n3", "n5"]
    assert list(zip(holdout.pairs[S.NOTE_ID_A], holdout.pairs[S.NOTE_ID_B])) == [("n1", "n3")]
    # n1-n3: held out itself; n1-n2 (both directions): co-occurred in the history, kept; n3-n6 touches n3 and is
    # not a history pair: held out; n5-n4 touches no held-out note: kept.
    assert holdout.held_out.tolist() == [True, False, True, False, False]


def test_skipped_with_a_reason():
    events, notes, pairs = _events(), _notes(), pd.DataFrame({S.NOTE_ID_A: [], S.NOTE_ID_B: []})
    assert warm_holdout(events, notes, pairs, MiningConfig(), WarmHoldoutConfig(0.0)) == (None, "turned off "
                                                                                              "(quantile 0)")
    held, why = warm_holdout(events, notes, pairs, MiningConfig(), WarmHoldoutConfig(0.4, min_pairs=2))
    assert held is None and "only 1 new co-occurrences" in why
    same_time = events.assign(**{S.TIMESTAMP: pd.Timestamp("2024-01-01", tz="UTC")})
    held, why = warm_holdout(same_time, notes, pairs, MiningConfig(), WarmHoldoutConfig(0.4, min_pairs=1))
    assert held is None and "timestamps" in why
    with pytest.raises(ValueError, match="quantile"):
        WarmHoldoutConfig(1.0)


def test_mine_writes_and_removes_the_holdout(tmp_path):
    from notellm.data.artifacts import read_manifest
    from notellm.data.importing import import_files
    from notellm.data.prepare import mine_and_split
    from notellm.data.splits import SplitConfig
    from notellm.data.store import load_pairs

    notes = pd.DataFrame({S.NOTE_ID: NOTES, S.TITLE: NOTES, S.CONTENT: ["x"] * 6, S.HASHTAGS: ["a"] * 6,
                          S.CATEGORY: ["c"] * 6})
    notes.to_csv(tmp_path / "notes.csv", index=False)
    _events().to_csv(tmp_path / "events.csv", index=False)
    data = tmp_path / "data"
    import_files(tmp_path / "notes.csv", tmp_path / "events.csv", data)
    all_train = SplitConfig(val_frac=0.0, test_frac=0.0)
    section = mine_and_split(data, MiningConfig(), all_train, progress=False,
                             warm_cfg=WarmHoldoutConfig(0.4, min_pairs=1))
    pairs = load_pairs(data)
    held = pairs[pairs[S.SPLIT] == S.WARM_HOLDOUT]
    assert {(a, b) for a, b in zip(held[S.NOTE_ID_A], held[S.NOTE_ID_B])} == {("n1", "n3"), ("n3", "n6")}
    assert section["pairs_per_split"][S.WARM_HOLDOUT] == 2 and section["warm_holdout"]["pairs"] == 1
    assert len(load_pairs(data, S.WARM_HOLDOUT)) == 2
    assert (data / S.WARM_PAIRS_FILE).is_file() and S.WARM_PAIRS_FILE in read_manifest(data)["files"]

    section = mine_and_split(data, MiningConfig(), all_train, progress=False)  # holdout off: nothing stale stays
    assert not (data / S.WARM_PAIRS_FILE).exists()
    manifest = json.loads((data / S.MANIFEST_FILE).read_text())
    assert S.WARM_PAIRS_FILE not in manifest["files"] and section["warm_holdout"]["skipped"] == "not asked"
    assert (load_pairs(data)[S.SPLIT] == "train").all()


def test_mine_cli_reports_the_holdout(tmp_path):
    import typer
    from typer.testing import CliRunner

    from notellm.cli.data import register
    from notellm.data.importing import import_files

    notes = pd.DataFrame({S.NOTE_ID: NOTES, S.TITLE: NOTES, S.CONTENT: ["x"] * 6, S.HASHTAGS: ["a"] * 6,
                          S.CATEGORY: ["c"] * 6})
    notes.to_csv(tmp_path / "notes.csv", index=False)
    _events().to_csv(tmp_path / "events.csv", index=False)
    import_files(tmp_path / "notes.csv", tmp_path / "events.csv", tmp_path / "data")
    app = typer.Typer()
    register(app)
    args = ["mine", str(tmp_path / "data"), "--val-frac", "0", "--test-frac", "0"]
    result = CliRunner().invoke(app, args + ["--warm-quantile", "0.4"])
    assert result.exit_code == 0, result.output
    assert "warm holdout: skipped, only 1 new co-occurrences" in " ".join(result.output.split())  # min 10 pairs
    result = CliRunner().invoke(app, args + ["--warm-quantile", "1.5"])
    assert result.exit_code != 0 and "quantile" in result.output
