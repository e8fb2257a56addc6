"""Paired bootstrap intervals and the wording rule, on queries with planted differences."""

from __future__ import annotations

import numpy as np
import pytest

from notellm.evaluation.bootstrap import BootstrapConfig, metric_intervals, paired_difference, resample_weights
from notellm.evaluation.metrics import per_query, summarize
from notellm.evaluation.results import Difference, build_table, comparison_sentence, comparison_sentences, verdict


def _raw(greater, ks=(1, 10), digest="q") -> dict:
    greater = list(greater)
    return {"ks": list(ks), "greater": greater, "ties": [0] * len(greater), "pool_size": 100, "n_candidates": 99,
            "query_digest": digest}


def test_per_query_means_are_the_summary():
    rng = np.random.default_rng(0)
    g, t = rng.integers(0, 50, 40), rng.integers(0, 3, 40)
    summary, values = summarize(g, t, [1, 5, 10]), per_query(g, t, [1, 5, 10])
    for metric, column in values.items():
        assert column.mean() == pytest.approx(summary[metric])


def test_weights_are_resamples_and_seeded():
    cfg = BootstrapConfig(resamples=200, seed=3)
    w = resample_weights(7, cfg)
    assert w.shape == (200, 7) and np.allclose(w.sum(axis=1), 1.0)
    assert np.allclose(w * 7, np.round(w * 7))  # integer counts / n
    assert np.array_equal(w, resample_weights(7, cfg))
    assert not np.array_equal(w, resample_weights(7, BootstrapConfig(resamples=200, seed=4)))


def test_interval_covers_a_planted_difference_and_says_better():
    """Method A finds the ground truth at rank 0 on 60% of 2,000 queries, B on 40% (independently): the true R@1
    difference is 0.2; the paired interval covers it and excludes 0."""
    rng = np.random.default_rng(1)
    n = 2000
    a = np.where(rng.random(n) < 0.6, 0, 50)
    b = np.where(rng.random(n) < 0.4, 0, 50)
    diff = paired_difference(per_query(a, np.zeros(n), [1]), per_query(b, np.zeros(n), [1]), BootstrapConfig())
    value, lo, hi = diff["recall@1"]
    assert lo < 0.2 < hi and lo > 0
    assert verdict(lo, hi) == "better" and verdict(-hi, -lo) == "worse"


def test_interval_excludes_a_difference_that_is_not_there():
    """Two methods that rank every query identically: the difference interval is [0, 0], so it excludes a
    difference of 0.2 and the verdict is "no detectable difference"."""
    g = np.arange(100) % 20
    diff = paired_difference(per_query(g, np.zeros(100), [5]), per_query(g, np.zeros(100), [5]), BootstrapConfig())
    value, lo, hi = diff["recall@5"]
    assert value == lo == hi == 0.0 and not lo <= 0.2 <= hi
    assert verdict(lo, hi) == "no detectable difference"


def test_one_flipped_query_is_no_detectable_difference():
    base = np.where(np.arange(300) % 2 == 0, 0, 40)
    other = base.copy()
    other[1] = 0  # one more hit out of 300
    table = build_table("t", "test pool", {"ref": {"paper": _raw(base)}, "m": {"paper": _raw(other)}},
                        reference="ref")
    d = table.methods["m"]["paper"].versus_reference["recall@1"]
    assert d.value == pytest.approx(1 / 300) and d.lo <= 0 <= d.hi
    assert d.verdict == "no detectable difference"
    (sentence,) = [s for s in comparison_sentences(table, ("recall_avg",)) if "paper" in s]
    assert "no detectable difference from ref" in sentence and "better" not in sentence


def test_pairing_narrows_the_interval_of_correlated_methods():
    """B = A plus a few extra hits: separately their intervals overlap widely, paired the difference is clear."""
    rng = np.random.default_rng(2)
    a = np.where(rng.random(500) < 0.3, 0, 30)
    b = a.copy()
    b[np.flatnonzero(a > 0)[:25]] = 0  # 25 more hits: +5 points
    cfg = BootstrapConfig()
    ia, ib = metric_intervals(per_query(a, np.zeros(500), [1]), cfg), metric_intervals(
        per_query(b, np.zeros(500), [1]), cfg)
    assert ia["recall@1"][2] > ib["recall@1"][1]  # the separate intervals overlap
    _, lo, hi = paired_difference(per_query(b, np.zeros(500), [1]), per_query(a, np.zeros(500), [1]), cfg)["recall@1"]
    assert 0 < lo <= 0.05 <= hi


def test_wording_rule_sentences():
    assert verdict(0.001, 0.02) == "better" and verdict(-0.02, -0.001) == "worse"
    assert verdict(-0.01, 0.02) == "no detectable difference" and verdict(0.0, 0.02) == "no detectable difference"
    assert verdict(0.3, 0.3, n_queries=1) == "no detectable difference"  # one query: a zero-width interval
    few = comparison_sentence("A", "B", "recall_avg", Difference(0.3, 0.3, 0.3, n_queries=1), "code")
    assert "no detectable difference" in few and "1 queries, too few for a verdict" in few
    better = comparison_sentence("A", "B", "recall_avg", Difference(0.02, 0.01, 0.03), "paper")
    assert better.startswith("A: better than B in Avg") and "+2.00 points" in better
    worse = comparison_sentence("A", "B", "mrr", Difference(-0.02, -0.03, -0.01), "code")
    assert worse.startswith("A: worse than B in MRR")
    none = comparison_sentence("A", "B", "recall@10", Difference(0.02, -0.01, 0.05), "paper")
    assert "no detectable difference from B in R@10" in none and "better" not in none and "worse" not in none


def test_table_defaults_and_refuses_unpaired_queries():
    raw = {"SentenceBERT (all-MiniLM-L6-v2)": {"paper": _raw([0, 1, 2])}, "X": {"paper": _raw([0, 0, 0])}}
    table = build_table("t", "test pool", raw)
    assert table.reference == "SentenceBERT (all-MiniLM-L6-v2)"
    assert not table.methods[table.reference]["paper"].versus_reference
    est = table.methods["X"]["paper"].metrics["recall@1"]
    assert est.value == 1.0 and est.lo == est.hi == 1.0
    raw["X"]["paper"]["query_digest"] = "other"
    with pytest.raises(ValueError, match="different paper-rule queries"):
        build_table("t", "test pool", raw)
    with pytest.raises(ValueError, match="reference method 'nope'"):
        build_table("t", "test pool", raw, reference="nope")
    assert build_table("t", "p", {"X": {"paper": _raw([0])}}).reference is None  # no SentenceBERT: no verdicts
