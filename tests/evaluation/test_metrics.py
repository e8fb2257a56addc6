"""Ranking metrics against hand-computed values.

Run: PYTHONPATH=. python -m pytest tests/evaluation/test_metrics.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

from notellm.evaluation.metrics import (
    hit_probability,
    mrr,
    ndcg_at_k,
    ranks_from_scores,
    recall_at_k,
    recall_ks,
    summarize,
)


def test_ranks_from_scores_toy_pool():
    """Pool of 5 candidates, 3 queries.

    q0: target col 2 (0.7); valid all; above it: 0.9 -> greater 1, ties 0.
    q1: target col 0 (0.5); col 1 also 0.5 (tie), col 3 0.8 above but invalid -> greater 0, ties 1.
    q2: target col 4 (0.1); everything else above -> greater 4.
    """
    scores = np.array(
        [[0.9, 0.1, 0.7, 0.2, 0.3], [0.5, 0.5, 0.1, 0.8, 0.2], [0.9, 0.8, 0.7, 0.6, 0.1]]
    )
    valid = np.ones_like(scores, dtype=bool)
    valid[1, 3] = False
    g, t = ranks_from_scores(scores, np.array([2, 0, 4]), valid)
    assert g.tolist() == [1, 0, 4]
    assert t.tolist() == [0, 1, 0]


def test_recall_mrr_ndcg_hand_computed():
    """Ranks 1, 0, 4 (no ties).

    recall@1 = 1/3 (only rank 0), recall@2 = 2/3, recall@5 = 1.
    MRR = (1/2 + 1 + 1/5) / 3 = 1.7 / 3.
    NDCG@10 = (1/log2(3) + 1/log2(2) + 1/log2(6)) / 3.
    """
    g, t = np.array([1, 0, 4]), np.zeros(3, dtype=int)
    assert recall_at_k(g, t, 1) == pytest.approx(1 / 3)
    assert recall_at_k(g, t, 2) == pytest.approx(2 / 3)
    assert recall_at_k(g, t, 5) == pytest.approx(1.0)
    assert mrr(g, t) == pytest.approx(1.7 / 3)
    expected = (1 / np.log2(3) + 1.0 + 1 / np.log2(6)) / 3
    assert ndcg_at_k(g, t, 10) == pytest.approx(expected)
    assert ndcg_at_k(g, t, 2) == pytest.approx((1 / np.log2(3) + 1.0) / 3)


def test_ties_are_expected_values():
    """greater 1, ties 3: the rank is uniform on {1, 2, 3, 4}.

    P(rank < 2) = 1/4, P(rank < 3) = 2/4; E[1/(r+1)] = (1/2 + 1/3 + 1/4 + 1/5) / 4;
    NDCG@3 = (1/log2(3) + 1/log2(4)) / 4.
    """
    g, t = np.array([1]), np.array([3])
    assert hit_probability(g, t, 2)[0] == pytest.approx(0.25)
    assert recall_at_k(g, t, 3) == pytest.approx(0.5)
    assert recall_at_k(g, t, 1) == 0.0
    assert mrr(g, t) == pytest.approx((1 / 2 + 1 / 3 + 1 / 4 + 1 / 5) / 4)
    assert ndcg_at_k(g, t, 3) == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / 4)


def test_all_ties_equals_random():
    """A constant scorer on a pool of n candidates has recall@k = k / n exactly."""
    n = 50
    g, t = np.zeros(7, dtype=int), np.full(7, n - 1)
    for k in (1, 5, 10, 20):
        assert recall_at_k(g, t, k) == pytest.approx(k / n)


def test_recall_ks_fit_the_pool_and_summary_average():
    assert recall_ks(750) == [1, 5, 10, 20, 50, 100]
    assert recall_ks(20_000)[-1] == 10_000
    s = summarize(np.array([0, 3]), np.array([0, 0]), [1, 5])
    assert s["recall@1"] == 0.5 and s["recall@5"] == 1.0
    assert s["recall_avg"] == pytest.approx(0.75)
    assert s["n_queries"] == 2
