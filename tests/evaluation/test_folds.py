"""Folds: disjoint test windows, no test note of a fold in that fold's training pairs, pooled queries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from notellm.data.splits import SplitConfig, assign_pair_splits, split_notes
from notellm.evaluation.results import build_table, pool_folds
from notellm.pipeline.folds import pooled


def test_folds_have_disjoint_test_notes_and_never_leak():
    rng = np.random.default_rng(0)
    notes = pd.DataFrame({"note_id": [f"n{i}" for i in range(3000)]})
    pairs = pd.DataFrame({"note_id_a": [f"n{i}" for i in rng.integers(0, 3000, 20_000)],
                          "note_id_b": [f"n{i}" for i in rng.integers(0, 3000, 20_000)]})
    tests = []
    base = split_notes(notes, SplitConfig(seed=5))
    for fold in range(5):
        split = split_notes(notes, SplitConfig(seed=5, fold=fold))
        test = set(split.index[split == "test"])
        assert abs(len(test) / 3000 - 0.1) < 0.03
        with_split, _ = assign_pair_splits(pairs, split)
        train = with_split[with_split["split"] == "train"]
        assert not (set(train["note_id_a"]) | set(train["note_id_b"])) & test  # no test note in training
        tests.append(test)
    assert split_notes(notes, SplitConfig(seed=5, fold=0)).equals(base)  # fold 0 is today's split
    for i in range(5):
        for j in range(i + 1, 5):
            assert not tests[i] & tests[j]  # every fold brings new queries
    with pytest.raises(ValueError, match="no test window"):
        SplitConfig(test_frac=0.25, fold=4)
    with pytest.raises(ValueError, match="method 'hash'"):
        SplitConfig(method="time", fold=1)


def test_pooled_folds_concatenate_queries():
    def raw(greater, ks, digest):
        return {"ks": ks, "greater": greater, "ties": [0] * len(greater), "pool_size": 10, "n_candidates": 9,
                "query_digest": digest}

    per_fold = [{"A": {"paper": raw([0, 3], [1, 5], "f0")}, "B": {"paper": raw([1, 1], [1, 5], "f0")},
                 "only0": {"paper": raw([0], [1], "f0")}},
                {"A": {"paper": raw([0, 9, 0], [1, 5, 8], "f1")}, "B": {"paper": raw([0, 0, 0], [1, 5, 8], "f1")}}]
    out = pooled(per_fold)
    assert set(out) == {"A", "B"}  # methods scored in every fold only
    assert out["A"]["paper"]["greater"] == [0, 3, 0, 9, 0] and out["A"]["paper"]["ks"] == [1, 5]
    assert out["A"]["paper"]["query_digest"] == out["B"]["paper"]["query_digest"]  # same pooled queries: paired
    table = build_table("t", "test pool", out, reference="B", folds=2)
    assert table.methods["A"]["paper"].n_queries == 5 and table.folds == 2
    assert table.methods["A"]["paper"].metrics["recall@1"].value == pytest.approx(3 / 5)
    assert pool_folds([per_fold[0]["A"]["paper"]]) is per_fold[0]["A"]["paper"]
