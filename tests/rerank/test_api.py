"""The shared contract of every re-ranker: edge cases, errors, batching, permutation, λ/θ → 1 = relevance order."""

from __future__ import annotations

import numpy as np
import pytest

from notellm.rerank import METHODS, RerankConfig, rerank, rerank_batch

PARAMS = {
    "none": {},
    "mmr": {"lam": 0.5},
    "dpp": {"theta": 0.5},
    "dpp_window": {"window": 3},
    "ssd": {"gamma": 1.0, "window": 4},
    "ssd_star": {"theta": 0.5, "window": 4},
}
RELEVANCE_ONLY = {"mmr": {"lam": 1.0}, "dpp": {"theta": 1.0}, "ssd": {"gamma": 0.0}, "ssd_star": {"theta": 1.0}}


def _data(n=30, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=n), rng.normal(size=(n, d))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_contract_permutation_and_determinism(method):
    s, e = _data()
    a = rerank(s, e, 12, method, **PARAMS[method])
    assert a.dtype == np.int64 and len(a) == 12 and len(set(a.tolist())) == 12 and a.min() >= 0 and a.max() < 30
    assert np.array_equal(a, rerank(s, e, 12, method, **PARAMS[method]))


@pytest.mark.parametrize("method", sorted(RELEVANCE_ONLY))
def test_full_relevance_weight_is_relevance_order(method):
    s, e = _data()
    assert rerank(s, e, 10, method, **RELEVANCE_ONLY[method]).tolist() == np.argsort(-s)[:10].tolist()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_edge_sizes(method):
    p = PARAMS[method]
    assert rerank(np.zeros(0), np.zeros((0, 4)), 5, method, **p).tolist() == []
    assert rerank(np.array([0.3]), np.ones((1, 4)), 5, method, **p).tolist() == [0]
    s, e = _data(n=6, d=8)
    assert sorted(rerank(s, e, 100, method, **p).tolist()) == list(range(6))  # k > N returns all N
    assert rerank(s, e, 0, method, **p).tolist() == []


@pytest.mark.parametrize("method", ["mmr", "ssd", "ssd_star"])
def test_duplicates_and_zero_vectors_are_safe(method):
    s, e = _data(n=10, d=4)
    e[3] = e[0]
    e[5] = 0.0
    out = rerank(s, e, 10, method, **PARAMS[method])
    assert sorted(out.tolist()) == list(range(10))


def test_dpp_never_picks_a_duplicate_or_zero_vector():
    s, e = _data(n=10, d=8)
    e[3] = e[0] * 2.0
    e[5] = 0.0
    out = rerank(s, e, 10, "dpp", theta=0.5).tolist()
    assert 5 not in out and not {0, 3} <= set(out) and len(out) == 8


@pytest.mark.parametrize("method", sorted(METHODS))
def test_window_not_smaller_than_list_is_no_window(method):
    if method in ("none", "dpp_window"):
        return
    s, e = _data()
    p = {kk: vv for kk, vv in PARAMS[method].items() if kk != "window"}
    assert np.array_equal(rerank(s, e, 8, method, window=8, **p), rerank(s, e, 8, method, **p))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_batched_equals_per_request_with_padding(method):
    rng = np.random.default_rng(3)
    s, e = rng.normal(size=(5, 20)), rng.normal(size=(5, 20, 6))
    s[2, 14:] = -np.inf  # request 2 has only 14 real candidates
    got = rerank_batch(s, e, 16, method, **PARAMS[method])
    assert got.shape == (5, 16)
    for r in range(5):
        valid = np.isfinite(s[r])
        single = rerank(s[r][valid], e[r][valid], 16, method, **PARAMS[method])
        assert got[r][got[r] >= 0].tolist() == single.tolist()
    assert (got[2, 14:] == -1).all()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.array([0.1, np.nan]), np.ones((2, 3)), 1), r"scores\[1\] is NaN"),
        ((np.array([0.1, np.inf]), np.ones((2, 3)), 1), r"scores\[1\] is \+inf"),
        ((np.zeros(3), np.ones((2, 3)), 1), "do not match scores"),
        ((np.zeros(3), np.ones(3), 1), r"embeddings must be \(N, d\)"),
        ((np.zeros((2, 3)), np.ones((2, 3)), 1), r"embeddings must be \(R, N, d\)"),
        ((np.zeros(2), np.array([[1.0, np.nan], [1.0, 0.0]]), 1), r"embeddings\[0\] holds NaN"),
        ((np.zeros(2), np.ones((2, 3)), -1), "k must be >= 0"),
        ((np.zeros(2), np.ones((2, 3)), 1.5), "k must be an integer"),
    ],
)
@pytest.mark.parametrize("method", ["mmr", "dpp", "ssd_star"])
def test_bad_input_errors_name_the_argument(args, match, method):
    with pytest.raises(ValueError, match=match):
        rerank(*args, method=method)


def test_bad_params():
    s, e = _data()
    with pytest.raises(ValueError, match="unknown rerank method 'foo'"):
        rerank(s, e, 3, "foo")
    with pytest.raises(TypeError, match="'ssd_star'.*lam"):
        rerank(s, e, 3, "ssd_star", lam=0.3)
    with pytest.raises(ValueError, match="theta must be in"):
        rerank(s, e, 3, "ssd_star", theta=1.5)
    with pytest.raises(ValueError, match="window must be"):
        rerank(s, e, 3, "mmr", window=0)
    with pytest.raises(ValueError, match="dpp_window needs"):
        rerank(s, e, 3, "dpp_window", window=None)
    with pytest.raises(ValueError, match="method must be one of"):
        RerankConfig(method="x")
    with pytest.raises(TypeError, match="gamma"):
        RerankConfig(method="mmr", params={"gamma": 1.0})


def test_float32_matches_float64_on_separated_problem():
    s, e = _data(n=200, d=16, seed=5)
    for method in ("mmr", "dpp", "ssd", "ssd_star"):
        assert np.array_equal(
            rerank(s, e, 20, method, **PARAMS[method]), rerank(s, e, 20, method, dtype=np.float64, **PARAMS[method])
        ), method


def test_planted_clusters_diversify():
    """3 tight clusters, relevance favours cluster 0: top-3 by score is all cluster 0; diversifiers cover all 3."""
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16) * 5
    labels = np.repeat([0, 1, 2], 10)
    e = centres[labels] + rng.normal(scale=0.1, size=(30, 16))
    s = np.where(labels == 0, 1.0, 0.5) + rng.normal(scale=0.01, size=30)
    assert set(labels[rerank(s, e, 3, "none")]) == {0}
    # z-scores: cluster 0 ≈ +1.41, others ≈ -0.71; e.g. SSD* θ=0.2: same-cluster 0.2·1.41 + 0.8·σ≈0 = 0.28 <
    # other-cluster 0.2·(-0.71) + 0.8·1.22 = 0.84 (σ² = 2 - 1/2 for orthogonal directions with the bias dimension).
    for method, p in [
        ("mmr", {"lam": 0.2}),
        ("dpp", {"theta": 0.5}),
        ("ssd_star", {"theta": 0.2}),
        ("ssd", {"gamma": 2.0}),
        ("dpp_window", {"window": 3, "theta": 0.5}),
    ]:
        assert set(labels[rerank(s, e, 3, method, **p)]) == {0, 1, 2}, method


@pytest.mark.parametrize("method", sorted(METHODS))
def test_batched_equals_per_request_with_duplicates_and_rank_exhaustion(method):
    """The batched and single-request kernels agree where round-off handling matters: duplicates, d < k."""
    rng = np.random.default_rng(4)
    s, e = rng.normal(size=(3, 12)), rng.normal(size=(3, 12, 5))
    e[:, 4] = e[:, 1] * 3.0  # a scaled duplicate in every request
    got = rerank_batch(s, e, 12, method, **PARAMS[method])
    for r in range(3):
        single = rerank(s[r], e[r], 12, method, **PARAMS[method])
        assert got[r][got[r] >= 0].tolist() == single.tolist()
