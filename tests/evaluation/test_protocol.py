"""The §6.1 protocol under both pool rules, and the breakdown buckets, on a hand-built 6-note pool.

Notes n0..n5 sit on the unit circle at 0°, 10°, 30°, 90°, 100°, 180°, so cosines are cos(angle gap).
Test pairs in file order: (n0,n2), (n1,n5), (n3,n4).

Paper rule (candidates = pool minus the target):
  n0 -> n2: n1 (cos10=.98) beats n2 (cos30=.87)                     rank 1
  n1 -> n5: n0, n2, n3, n4 all beat n5 (cos170=-.98)                 rank 4
  n3 -> n4: n4 (cos10) is the nearest                                 rank 0
Code rule: all three pairs are accepted (no note repeats); candidates = pool minus {n0, n1, n3} = {n2, n4, n5}:
  n0 -> n2: rank 0 (n1 is gone);  n1 -> n5: n2 (.94) and n4 (cos90=0) beat it: rank 2;  n3 -> n4: rank 0.

Run: PYTHONPATH=. python -m pytest tests/evaluation/test_protocol.py -q
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from notellm.evaluation.buckets import exposure_buckets, length_buckets, standard_breakdowns, warm_cold_buckets
from notellm.evaluation.protocol import EmbeddingScorer, build_queries, evaluate_queries, links_queries, rank_queries
from notellm.retrieval.vectors import NoteVectors

ANGLES = [0, 10, 30, 90, 100, 180]
IDS = [f"n{i}" for i in range(6)]


@pytest.fixture()
def vectors() -> NoteVectors:
    rad = np.deg2rad(ANGLES)
    return NoteVectors(IDS, np.stack([np.cos(rad), np.sin(rad)], axis=1))


@pytest.fixture()
def pairs() -> pd.DataFrame:
    return pd.DataFrame({"note_id_a": ["n0", "n1", "n3"], "note_id_b": ["n2", "n5", "n4"], "score": 1.0})


def test_paper_rule_ranks(vectors, pairs):
    queries = build_queries(pairs, IDS, "paper")
    g, t = rank_queries(EmbeddingScorer(vectors, "toy"), queries, IDS)
    assert g.tolist() == [1, 4, 0]
    assert t.tolist() == [0, 0, 0]


def test_code_rule_ranks_and_pool(vectors, pairs):
    queries = build_queries(pairs, IDS, "code")
    assert queries.exclude_all == {"n0", "n1", "n3"}
    g, _ = rank_queries(EmbeddingScorer(vectors, "toy"), queries, IDS)
    assert g.tolist() == [0, 2, 0]
    res = evaluate_queries(EmbeddingScorer(vectors, "toy"), queries, IDS, ks=[1, 3])
    assert res["n_candidates"] == 3
    assert res["overall"]["recall@1"] == pytest.approx(2 / 3)
    assert res["overall"]["recall@3"] == pytest.approx(1.0)
    assert res["overall"]["mrr"] == pytest.approx((1 + 1 / 3 + 1) / 3)


def test_code_rule_dedups_repeated_notes(vectors):
    """(n0,n2) accepted; (n2,n3) rejected (n2 used); (n0,n4) rejected (n0 used); (n3,n4) accepted."""
    pairs = pd.DataFrame({"note_id_a": ["n0", "n2", "n0", "n3"], "note_id_b": ["n2", "n3", "n4", "n4"]})
    queries = build_queries(pairs, IDS, "code")
    assert list(zip(queries.query_ids, queries.truth_ids)) == [("n0", "n2"), ("n3", "n4")]
    paper = build_queries(pairs, IDS, "paper")
    assert len(paper.query_ids) == 4


def test_pairs_outside_pool_and_self_pairs_are_dropped(vectors):
    pairs = pd.DataFrame({"note_id_a": ["n0", "n1", "zz"], "note_id_b": ["n0", "n2", "n1"]})
    queries = build_queries(pairs, IDS, "paper")
    assert queries.query_ids == ["n1"]


def test_links_are_used_in_both_directions(vectors):
    links = pd.DataFrame({"note_id_a": ["n3"], "note_id_b": ["n4"], "link_type": ["duplicate"]})
    q = links_queries(links, IDS)
    assert sorted(zip(q.query_ids, q.truth_ids)) == [("n3", "n4"), ("n4", "n3")]
    res = evaluate_queries(EmbeddingScorer(vectors, "toy"), q, IDS, ks=[1])
    assert res["overall"]["recall@1"] == 1.0


def test_exposure_buckets_shares():
    """10 notes with 0..9 events: bottom 30% = n0..n2 low, top 10% = n9 high."""
    ids = [f"n{i}" for i in range(10)]
    events = pd.DataFrame({"note_id": [f"n{i}" for i in range(10) for _ in range(i)], "user_id": "u"})
    buckets = exposure_buckets(ids, events)
    assert [buckets[i] for i in ids] == ["low"] * 3 + ["mid"] * 6 + ["high"]


def test_breakdowns_split_queries(vectors, pairs):
    """Events per note: n0 1, n1 1, n2 0, n3 2, n4 5, n5 3. Of 6 notes round(1.8) = 2 are low (n2, then n0 by id),
    round(0.6) = 1 is high (n4)."""
    notes = pd.DataFrame({
        "note_id": IDS, "title": ["a", "bb", "c", "dddd", "e", "f"], "content": ["x" * i for i in range(6)],
        "hashtags": [[]] * 6, "category": ["beer", "beer", "coffee", "coffee", "beer", "ai"],
    })
    events = pd.DataFrame({"note_id": ["n4"] * 5 + ["n5"] * 3 + ["n3"] * 2 + ["n0", "n1"], "user_id": "u"})
    train_pairs = pd.DataFrame({"note_id_a": ["n0"], "note_id_b": ["n9"]})
    bd = standard_breakdowns(notes, IDS, events, train_pairs)
    assert bd["exposure"][1] == {"n2": "low", "n0": "low", "n1": "mid", "n3": "mid", "n5": "mid", "n4": "high"}
    assert warm_cold_buckets(IDS, train_pairs)["n0"] == "warm"
    assert length_buckets(notes, IDS)["n0"] == "short" and length_buckets(notes, IDS)["n5"] == "long"
    res = evaluate_queries(EmbeddingScorer(vectors, "toy"), build_queries(pairs, IDS, "paper"), IDS, ks=[1],
                           breakdowns=bd)
    exposure = res["breakdowns"]["exposure"]
    assert exposure["low"]["n_queries"] == 1 and exposure["low"]["recall@1"] == 0.0  # n0 -> n2, rank 1
    assert exposure["high"]["n_queries"] == 1 and exposure["high"]["recall@1"] == 1.0  # n3 -> n4, rank 0
    assert res["breakdowns"]["warm_cold"]["warm"]["n_queries"] == 1
    assert set(res["breakdowns"]["category"]) == {"beer", "coffee"}
