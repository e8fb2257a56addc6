"""Diversity / relevance-kept metrics on hand-computed lists."""

from __future__ import annotations

import math

import numpy as np
import pytest

from notellm.rerank.metrics import (
    batch_diversity,
    category_coverage,
    ilad,
    ilmd,
    list_metrics,
    ndcg_vs_original,
    score_ratio,
    windowed,
)


def test_ilad_ilmd_hand_computed():
    # e0 ⟂ e1, e2 = -e0: distances d01 = 1, d02 = 2, d12 = 1 -> ILAD 4/3, ILMD 1
    e = np.array([[1.0, 0.0], [0.0, 3.0], [-2.0, 0.0]])
    assert ilad(e) == pytest.approx(4 / 3)
    assert ilmd(e) == pytest.approx(1.0)
    assert math.isnan(ilad(e[:1])) and math.isnan(ilmd(e[:0]))


def test_windowed_is_mean_over_windows():
    e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    # windows of 2: (0,1) d=0, (1,2) d=1, (2,3) d=0 -> mean 1/3
    assert windowed(ilad, e, 2) == pytest.approx(1 / 3)
    assert windowed(ilmd, e, 3) == pytest.approx(0.0)
    assert windowed(ilad, e, 10) == pytest.approx(ilad(e))


def test_relevance_kept():
    scores = np.array([4.0, 3.0, 2.0, 1.0])
    assert score_ratio(scores, np.array([0, 1])) == pytest.approx(1.0)
    assert score_ratio(scores, np.array([0, 3])) == pytest.approx(5 / 7)
    assert ndcg_vs_original(scores, np.array([0, 1])) == pytest.approx(1.0)
    # gains = scores - 1 = [3, 2, 1, 0]; [0, 3]: 3/1 + 0 = 3; ideal 3 + 2/log2(3)
    assert ndcg_vs_original(scores, np.array([0, 3])) == pytest.approx(3 / (3 + 2 / np.log2(3)))


def test_coverage_and_list_metrics():
    assert category_coverage(["a", "a", "b"], ["a", "b", "c", "c"]) == {"categories": 2.0, "coverage": 2 / 3}
    e = np.eye(4)
    out = list_metrics(e, np.array([1.0, 0.9, 0.8, 0.1]), np.array([0, 2]), ["x", "y", "z", "x"], window=2)
    assert out["ilad"] == pytest.approx(1.0) and out["categories"] == 2.0 and out["ilad@w2"] == pytest.approx(1.0)


def test_batch_diversity_equals_per_list():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(4, 9, 5))
    out = batch_diversity(e, window=4)
    for u in range(4):
        assert out["ilad"][u] == pytest.approx(ilad(e[u]))
        assert out["ilmd"][u] == pytest.approx(ilmd(e[u]))
        assert out["ilad@w4"][u] == pytest.approx(windowed(ilad, e[u], 4))
        assert out["ilmd@w4"][u] == pytest.approx(windowed(ilmd, e[u], 4))
