"""Splits by note (no leakage, determinism), pair split assignment, and the paper code's eval dedup rule.

PYTHONPATH=. python -m pytest tests/data/test_splits.py -q
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from notellm.data.splits import SplitConfig, assign_pair_splits, dedup_pairs_code_rule, split_notes


def _notes(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "note_id": [f"n{i}" for i in range(n)],
            "created_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), "h"),
        }
    )


def test_hash_split_is_deterministic_and_near_fractions():
    notes = _notes(20_000)
    cfg = SplitConfig(val_frac=0.1, test_frac=0.2, seed=3)
    split = split_notes(notes, cfg)
    assert split.equals(split_notes(notes, cfg))
    frac = split.value_counts(normalize=True)
    assert frac["test"] == pytest.approx(0.2, abs=0.01) and frac["val"] == pytest.approx(0.1, abs=0.01)
    # a note's split does not depend on the other notes, but does depend on the seed
    assert split_notes(notes.iloc[::7], cfg).equals(split.iloc[::7])
    assert (split_notes(notes, SplitConfig(val_frac=0.1, test_frac=0.2, seed=4)) != split).mean() > 0.2


def test_time_split_puts_newest_notes_in_test():
    split = split_notes(_notes(10), SplitConfig(val_frac=0.2, test_frac=0.3, method="time"))
    assert split.tolist() == ["train"] * 5 + ["val"] * 2 + ["test"] * 3
    no_time = pd.DataFrame({"note_id": ["a"]})
    with pytest.raises(ValueError, match="needs a created_at column"):
        split_notes(no_time, SplitConfig(method="time"))


def test_pairs_get_their_notes_split_and_crossing_pairs_are_counted():
    note_splits = pd.Series({"a": "train", "b": "train", "c": "test", "d": "test", "e": "val"})
    pairs = pd.DataFrame(
        {
            "note_id_a": ["a", "a", "c", "e", "c", "x"],
            "note_id_b": ["b", "c", "d", "a", "e", "a"],
            "score": [1.0, 0.9, 0.8, 0.7, 0.6, 0.5],
        }
    )
    out, dropped = assign_pair_splits(pairs, note_splits)
    assert out[["note_id_a", "note_id_b", "split"]].values.tolist() == [["a", "b", "train"], ["c", "d", "test"]]
    assert dropped == {"train|test": 1, "val|train": 1, "test|val": 1, "unknown": 1}
    assert len(out) + sum(dropped.values()) == len(pairs)  # never silent


def test_no_leakage_on_random_pairs():
    notes = _notes(500)
    split = split_notes(notes, SplitConfig(seed=1))
    rng = np.random.default_rng(0)
    ids = notes["note_id"].to_numpy()
    pairs = pd.DataFrame({"note_id_a": rng.choice(ids, 3000), "note_id_b": rng.choice(ids, 3000), "score": 1.0})
    out, dropped = assign_pair_splits(pairs, split)
    train_notes = set(out.loc[out["split"] == "train", "note_id_a"]) | set(
        out.loc[out["split"] == "train", "note_id_b"]
    )
    held_out = set(split[split != "train"].index)
    assert not train_notes & held_out  # no val/test note in any training pair
    for name in ("val", "test"):
        part = out[out["split"] == name]
        assert (split[part["note_id_a"]].to_numpy() == name).all() and (
            split[part["note_id_b"]].to_numpy() == name
        ).all()
    assert len(out) + sum(dropped.values()) == 3000


def test_split_config_checks():
    with pytest.raises(ValueError, match="must be < 1"):
        SplitConfig(val_frac=0.5, test_frac=0.5)
    with pytest.raises(ValueError, match="test_frac must be in"):
        SplitConfig(test_frac=-0.1)


def test_dedup_code_rule():
    """Read in order; accept a pair only if neither note is in an earlier ACCEPTED pair.

    (a,b) accepted -> {a,b} used; (b,c) rejected (b used); (c,d) accepted; (d,a) rejected; (e,f) accepted.
    With known ids excluding f: (e,f) is rejected and does not mark e, so (e,g) is accepted.
    """
    pairs = pd.DataFrame({"note_id_a": ["a", "b", "c", "d", "e", "e"], "note_id_b": ["b", "c", "d", "a", "f", "g"]})
    assert dedup_pairs_code_rule(pairs)[["note_id_a", "note_id_b"]].values.tolist() == [
        ["a", "b"],
        ["c", "d"],
        ["e", "f"],
    ]
    known = {"a", "b", "c", "d", "e", "g"}
    assert dedup_pairs_code_rule(pairs, known)[["note_id_a", "note_id_b"]].values.tolist() == [
        ["a", "b"],
        ["c", "d"],
        ["e", "g"],
    ]
