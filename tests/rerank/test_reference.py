"""Each re-ranker against a naive, from-the-definition reference on small random problems (float64).

Run: PYTHONPATH=. python -m pytest tests/rerank -q -p no:cacheprovider
"""

from __future__ import annotations

import numpy as np
import pytest

from notellm.rerank import dpp, mmr, ssd, ssd_star
from notellm.rerank.inputs import append_bias, zscore
from notellm.retrieval.exact import l2_normalize


def _problem(seed: int, n: int = 14, d: int = 6):
    rng = np.random.default_rng(seed)
    return rng.normal(size=n), rng.normal(size=(n, d))


def _residual(x: np.ndarray, basis: list[np.ndarray]) -> np.ndarray:
    """x minus its least-squares projection onto span(basis), computed directly (no incremental state)."""
    if not basis:
        return x
    mat = np.stack(basis, axis=1)  # (D, m)
    coef, *_ = np.linalg.lstsq(mat, x, rcond=None)
    return x - mat @ coef


def _volume(vectors: np.ndarray) -> float:
    """Parallelotope volume √det(V Vᵀ)."""
    return float(np.sqrt(max(np.linalg.det(vectors @ vectors.T), 0.0))) if len(vectors) else 1.0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("form", ["product", "star"])
def test_ssd_no_window_maximises_volume_objective(seed, form):
    """w = None: each step maximises r + γ·vol(S ∪ {i}) (product) or θr + (1−θ)γ·vol(S∪i)/vol(S) (SSD*)."""
    scores, emb = _problem(seed)
    gamma, theta, k = 0.7, 0.4, 6
    if form == "product":
        order = ssd(scores, emb, k, gamma=gamma, dtype=np.float64)
    else:
        order = ssd_star(scores, emb, k, theta=theta, gamma=gamma, dtype=np.float64)
    v = append_bias(l2_normalize(emb, dtype=np.float64))
    r = zscore(scores[None])[0]
    chosen: list[int] = []
    for step, pick in enumerate(order):
        cands = [i for i in range(len(scores)) if i not in chosen]
        vol_now = _volume(v[chosen])
        objs = {}
        for i in cands:
            vol = _volume(v[chosen + [i]])
            objs[i] = r[i] + gamma * vol if form == "product" else theta * r[i] + (1 - theta) * gamma * vol / vol_now
        if step == 0 and form == "star":  # equal volumes: opens with argmax r
            assert pick == int(np.argmax(r))
        assert objs[pick] >= max(objs.values()) - 1e-9, (step, pick, objs)
        chosen.append(int(pick))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("window", [2, 3, 5])
@pytest.mark.parametrize("form", ["product", "star"])
def test_ssd_window_equals_direct_gram_schmidt(seed, window, form):
    """Windowed SSD == a from-scratch Gram–Schmidt of each pick against the previous w − 1 bases (lstsq)."""
    scores, emb = _problem(seed, n=16, d=5)
    gamma, theta, k = 1.3, 0.3, 10
    if form == "product":
        order = ssd(scores, emb, k, gamma=gamma, window=window, dtype=np.float64)
    else:
        order = ssd_star(scores, emb, k, theta=theta, gamma=gamma, window=window, dtype=np.float64)
    v = append_bias(l2_normalize(emb, dtype=np.float64))
    r = zscore(scores[None])[0]
    bases: list[np.ndarray] = []
    chosen: list[int] = []
    volume = 1.0
    for step, pick in enumerate(order):
        recent = bases[-(window - 1) :] if window > 1 else []
        sigma = {i: float(np.linalg.norm(_residual(v[i], recent))) for i in range(len(r)) if i not in chosen}
        objs = {
            i: (r[i] + gamma * volume * s) if form == "product" else (theta * r[i] + (1 - theta) * gamma * s)
            for i, s in sigma.items()
        }
        best = max(objs.values())
        assert objs[pick] >= best - 1e-9, (step, pick)
        chosen.append(int(pick))
        bases.append(_residual(v[pick], recent))  # the pick's residual against the full window, pre-eviction
        volume *= sigma[pick]


def test_ssd_window_at_least_list_length_equals_no_window():
    scores, emb = _problem(7, n=20)
    assert np.array_equal(
        ssd_star(scores, emb, 8, window=8, dtype=np.float64), ssd_star(scores, emb, 8, window=None, dtype=np.float64)
    )
    assert np.array_equal(ssd_star(scores, emb, 8, window=50), ssd_star(scores, emb, 8))


def _naive_dpp(scores, emb, k, alpha, window=None, eps=1e-10):
    u = l2_normalize(emb, dtype=np.float64)
    q = np.exp(alpha * zscore(scores[None])[0])
    kernel = q[:, None] * (u @ u.T) * q[None, :]
    chosen: list[int] = []
    while len(chosen) < k:
        ctx = chosen if window is None else chosen[max(0, len(chosen) - (window - 1)) :] if window > 1 else []
        base = np.linalg.slogdet(kernel[np.ix_(ctx, ctx)])[1] if ctx else 0.0
        best, best_gain = None, -np.inf
        for i in range(len(scores)):
            if i in chosen:
                continue
            sign, logdet = np.linalg.slogdet(kernel[np.ix_(ctx + [i], ctx + [i])])
            gain = logdet - base if sign > 0 else -np.inf
            if gain > best_gain + 1e-9:  # ties (equal volumes) go to the lower index, as argmax does
                best, best_gain = i, gain
        if best is None or best_gain < np.log(eps):
            break
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("theta", [0.0, 0.5, 0.8])
def test_fast_dpp_equals_naive_logdet_greedy(seed, theta):
    scores, emb = _problem(seed, n=18, d=12)
    alpha = theta / (2 * (1 - theta))
    got = dpp(scores, emb, 10, theta=theta, dtype=np.float64)
    assert got.tolist() == _naive_dpp(scores, emb, 10, alpha)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("window", [2, 3, 4])
def test_dpp_window_equals_naive_windowed_logdet(seed, window):
    scores, emb = _problem(seed, n=18, d=6)
    got = dpp(scores, emb, 14, theta=0.5, window=window, dtype=np.float64)
    assert got.tolist() == _naive_dpp(scores, emb, 14, 0.5, window=window)


def test_dpp_stops_at_rank_by_epsilon_rule():
    """d = 3 unit vectors span at most 3 dimensions: the 4th gain is 0 (< ε), so the list stops at 3."""
    scores, emb = _problem(1, n=10, d=3)
    got = dpp(scores, emb, 8, theta=0.5, dtype=np.float64)
    assert len(got) == 3 and got.tolist() == _naive_dpp(scores, emb, 8, 0.5)
    assert len(dpp(scores, emb, 8, theta=0.5)) == 3  # float32 too: round-off residuals are not gains


def test_dpp_epsilon_stops_on_low_quality():
    """Hand-computed: orthogonal items, d_i² = exp(2α z_i); ε above the weakest item's d² drops it."""
    scores = np.array([1.0, 0.0, -1.0])
    emb = np.eye(3)
    z = zscore(scores[None])[0]  # [1.2247, 0, -1.2247]
    alpha = 1.0
    d2 = np.exp(2 * alpha * z)  # [11.58, 1, 0.0864]
    assert dpp(scores, emb, 3, alpha=alpha).tolist() == [0, 1, 2]
    assert dpp(scores, emb, 3, alpha=alpha, epsilon=float(d2[2]) * 1.01).tolist() == [0, 1]


def _naive_mmr(scores, emb, k, lam, window=None):
    u = l2_normalize(emb, dtype=np.float64)
    sim = u @ u.T
    r = zscore(scores[None])[0]
    chosen: list[int] = []
    while len(chosen) < min(k, len(scores)):
        ctx = chosen if window is None else chosen[max(0, len(chosen) - (window - 1)) :] if window > 1 else []
        objs = {
            i: (lam * r[i] - (1 - lam) * max(sim[i, j] for j in ctx)) if ctx else r[i]
            for i in range(len(r))
            if i not in chosen
        }
        chosen.append(max(objs, key=lambda i: (objs[i], -i)))
    return chosen


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("window", [None, 2, 4])
def test_mmr_equals_definition(seed, lam, window):
    scores, emb = _problem(seed, n=15)
    assert mmr(scores, emb, 9, lam=lam, window=window, dtype=np.float64).tolist() == _naive_mmr(
        scores, emb, 9, lam, window
    )


def test_mmr_hand_computed():
    """Items 0 and 1 are the same direction; 2 is orthogonal. λ=0.5 on z-scores [1.22, 0, -1.22]:
    step 2 objectives: item1 0.5·0 − 0.5·1 = −0.5; item2 0.5·(−1.22) − 0.5·0 = −0.61 → item 1, then 2."""
    scores = np.array([1.0, 0.0, -1.0])
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert mmr(scores, emb, 3, lam=0.5).tolist() == [0, 1, 2]
    # λ = 0.3: item1 0.3·0 − 0.7 = −0.7; item2 0.3·(−1.22) − 0 = −0.37 → the orthogonal item jumps ahead.
    assert mmr(scores, emb, 3, lam=0.3).tolist() == [0, 2, 1]
