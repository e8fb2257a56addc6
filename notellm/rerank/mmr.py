"""Maximal Marginal Relevance (Carbonell & Goldstein 1998), batched, with an optional sliding window.

Greedy: pick argmax_i λ · r_i − (1 − λ) · max_{j ∈ S} cos(e_i, e_j); the first pick (S empty) is argmax r.

Choices:
- λ weighs relevance (the paper's convention; OpenSearch puts it on the diversity term, pyversity's `diversity`
  is 1 − λ).
- `window` counts the new item, like SSD and DPP here: the max runs over the last w − 1 picks, the fix for long
  lists where max-sim saturates near 1 (docs/method.md §8.4). None = all picks (incremental max, O(N) per step).
- Raw cosine in [−1, 1]; pyversity clips similarities to [0, 1], so the two coincide when no cosine is negative.
- One request runs `_mmr_single` (2-D arrays, less per-call overhead), batches `_mmr_greedy`; tests check both agree.
"""

from __future__ import annotations

import numpy as np

from notellm.rerank.inputs import (
    check_inputs,
    check_unit_interval,
    check_window,
    prepare_embeddings,
    relevance,
    resolve_dtype,
)


def _mmr_greedy(rel: np.ndarray, u: np.ndarray, k: int, lam: float, window: int | None) -> np.ndarray:
    """rel (R,N) relevance (-inf = unavailable), u (R,N,D) unit rows -> (R,k) int64."""
    n_req, n, _ = u.shape
    out = np.full((n_req, k), -1, dtype=np.int64)
    if k == 0 or n == 0:
        return out
    width = k if window is None else window - 1
    base = np.where(np.isfinite(rel), lam * rel, -np.inf).astype(u.dtype)  # (R, N) λ r
    penalty = u.dtype.type(1.0 - lam)
    rows = np.arange(n_req)
    sims = np.full((n_req, max(width, 1), n), -np.inf, dtype=u.dtype) if window is not None else None  # (R, m, N)
    maxsim = np.full((n_req, n), -np.inf, dtype=u.dtype)  # (R, N)
    obj = np.empty_like(base)
    for t in range(k):
        if t == 0:  # S empty: pure relevance (also breaks the all-zero tie when λ = 0)
            obj[:] = rel
        elif width == 0:
            obj[:] = base
        else:
            np.multiply(maxsim, penalty, out=obj)
            np.subtract(base, obj, out=obj)
        pick = obj.argmax(axis=1)
        out[:, t] = np.where(np.isfinite(obj[rows, pick]), pick, -1)
        base[rows, pick] = -np.inf
        if width == 0 or t == k - 1:
            continue
        sim = np.matmul(u, u[rows, pick][:, :, None])[:, :, 0]  # (R, N) cos to the pick
        if sims is None:
            np.maximum(maxsim, sim, out=maxsim)
        else:
            sims[:, t % width] = sim
            np.max(sims, axis=1, out=maxsim)
    return out


def _mmr_single(rel: np.ndarray, u: np.ndarray, k: int, lam: float, window: int | None) -> np.ndarray:
    """`_mmr_greedy` for one request on 2-D arrays.  rel (N,), u (N,D) -> (k,) int64, -1 padded."""
    n = u.shape[0]
    out = np.full(k, -1, dtype=np.int64)
    if k == 0 or n == 0:
        return out
    width = k if window is None else window - 1
    base = (lam * rel if lam > 0 else np.where(np.isfinite(rel), 0.0, -np.inf)).astype(u.dtype)  # (N,) λ r
    penalty = u.dtype.type(1.0 - lam)
    sims = np.full((max(width, 1), n), -np.inf, dtype=u.dtype) if window is not None else None  # (m, N)
    maxsim = np.full(n, -np.inf, dtype=u.dtype)
    obj = np.empty_like(base)
    j = int(rel.argmax())  # S empty: pure relevance
    if not rel[j] > -np.inf:
        return out
    out[0] = j
    base[j] = -np.inf
    for t in range(1, k):
        if width == 0:
            obj[:] = base
        else:
            sim = u @ u[j]  # (N,)
            if sims is None:
                np.maximum(maxsim, sim, out=maxsim)
            else:
                sims[(t - 1) % width] = sim
                np.max(sims, axis=0, out=maxsim)
            np.multiply(maxsim, penalty, out=obj)
            np.subtract(base, obj, out=obj)
        j = int(obj.argmax())
        if not obj[j] > -np.inf:
            break
        out[t] = j
        base[j] = -np.inf
    return out


def mmr(
    scores,
    embeddings,
    k: int,
    *,
    lam: float = 0.5,
    window: int | None = None,
    normalize_scores: bool = True,
    dtype=np.float32,
) -> np.ndarray:
    """MMR re-ranking.

    Args:
        scores: (N,) or (R, N) relevance; -inf excludes a candidate.
        embeddings: (N, d) or (R, N, d); cosine similarity is used.
        k: list length; k > N returns all N.
        lam: relevance weight λ in [0, 1]; 1 = relevance order, 0 = pure novelty.
        window: positions that interact, counting the new item (None = all previous picks).
        normalize_scores: z-score scores per request (set False to compare with raw-score MMR, e.g. pyversity).
        dtype: float32 (fast) or float64.

    Returns:
        (min(k, N),) or (R, min(k, N)) int64 indices in feed order; -1 where nothing valid was left.
    """
    check_unit_interval("lam", lam)
    check_window(window)
    s, e, batched = check_inputs(scores, embeddings, k)
    dt = resolve_dtype(dtype)
    u, _ = prepare_embeddings(e, normalize=True, bias=False, dtype=dt, batched=batched)
    rel = relevance(s, normalize_scores)
    kk = min(k, s.shape[1])
    out = (
        _mmr_single(rel[0], u[0], kk, float(lam), window)[None]
        if len(rel) == 1
        else _mmr_greedy(rel, u, kk, float(lam), window)
    )
    return out if batched else out[0][out[0] >= 0]
