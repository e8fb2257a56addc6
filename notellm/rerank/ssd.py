"""Sliding Spectrum Decomposition (SSD, Huang et al. KDD'21): greedy, batched, both objective forms.

A feed is a sequence; every window of `w` consecutive items spans a volume. Greedy SSD keeps an orthonormal basis
of the last `w - 1` picks (modified Gram–Schmidt over a circular queue, docs/method.md §8.2) and scores each candidate
by the norm σ_i of its residual against that basis:

- `ssd`       original product form  s_i = r_i + γ · C · σ_i,   C = σ_1 · … · σ_{t-1}  (the running volume)
- `ssd_star`  stabilised SSD* (Eq. 12) s_i = θ · r_i + (1 − θ) · γ · σ_i

Choices (the paper's method section was not available; see docs/diversity.md):
- **`window` counts the new item**: a window of w positions means the candidate is orthogonalised against the
  bases of the w − 1 previous picks (paper semantics). `window=None` never evicts: σ is then the distance to the
  span of *all* previous picks and C is exactly the parallelotope volume √det(VVᵀ) of the list. pyversity's
  `window=m` equals our `window=m + 1`.
- Like the paper's sliding decomposition (and pyversity, rsdiv), the new basis is the pick's residual against the
  full queue *before* the oldest basis is evicted, so items that left the window still shape the basis.
- A pick whose residual is round-off (a duplicate, or inside the window's span) occupies its window position with
  a zero basis vector; in the product form it drives C to ~0 (the form's known weakness, which SSD* fixes).
- Vectors are unit-normalised and get the constant-1 dimension by default; scores are z-scored per request.

Implementation (hand-written: pyversity materialises and updates the N×d residual matrix twice per step; we never
form it). The queue bases are orthonormal, so ‖R_i‖² = ‖v_i‖² − Σ_k (v_i·b_k)²: per step one batched mat-vec
V·b (O(N d)), an O(w d) Gram–Schmidt of the pick, and O(N) norm updates; eviction adds back the stored (v·b_old)².
One request runs `_ssd_single` (the same steps on 2-D arrays: at N ≈ 100 per-call overhead dominates, and batch
indexing doubles it); batches run `_ssd_greedy`. Duplicated on purpose; tests check batched == per-request.
"""

from __future__ import annotations

import math

import numpy as np

from notellm.rerank.inputs import (
    check_inputs,
    check_unit_interval,
    check_window,
    numerical_floor,
    prepare_embeddings,
    relevance,
    resolve_dtype,
)


def _ssd_greedy(
    rel: np.ndarray,
    v: np.ndarray,
    sq: np.ndarray,
    k: int,
    window: int | None,
    weight: float,
    product: bool,
    first: np.ndarray | None = None,
) -> np.ndarray:
    """The greedy loop on prepared inputs.  rel (R,N) with -inf = unavailable, v (R,N,D), sq (R,N) -> (R,k) int64.

    `first` (R,N), when given, decides step 1 alone: with equal starting norms the volume term ties, and pyversity
    and rsdiv also open with argmax r (this matters for θ = 0, where the tie would otherwise go to index 0).
    """
    n_req, n, dim = v.shape
    dtype = v.dtype
    out = np.full((n_req, k), -1, dtype=np.int64)
    if k == 0 or n == 0:
        return out
    slots = k if window is None else window - 1  # bases kept; 0 means no diversity term at all
    bases = np.zeros((n_req, max(slots, 1), dim), dtype=dtype)  # (R, m, D) orthonormal or zero rows
    proj = np.zeros((n_req, max(slots, 1), n), dtype=dtype)  # (R, m, N) v_i · b_k, re-added on eviction
    sq = sq.copy()  # (R, N) squared residual norms
    base = rel.astype(dtype, copy=True)  # (R, N) relevance term, -inf once picked
    rows = np.arange(n_req)
    volume = np.ones(n_req, dtype=np.float64)  # C, product form only
    floor = numerical_floor(dtype) * float(np.sqrt(sq.max())) if sq.size else 0.0
    norm = np.empty_like(sq)
    obj = np.empty_like(sq)
    for t in range(k):
        np.maximum(sq, 0, out=sq)
        np.sqrt(sq, out=norm)  # (R, N) σ_i
        scale = (weight * volume).astype(dtype)[:, None] if product else dtype.type(weight)
        np.multiply(norm, scale, out=obj)
        obj += base
        if t == 0 and first is not None:
            obj[:] = first
        pick = obj.argmax(axis=1)  # (R,)
        valid = np.isfinite(obj[rows, pick])
        out[:, t] = np.where(valid, pick, -1)
        base[rows, pick] = -np.inf
        if slots == 0 or t == k - 1:
            continue
        vj = v[rows, pick]  # (R, D)
        filled = min(t, slots)
        if filled:
            coef = np.einsum("rmd,rd->rm", bases[:, :filled], vj)  # (R, m)
            b = vj - np.einsum("rm,rmd->rd", coef, bases[:, :filled])  # (R, D) residual of the pick
        else:
            b = vj.copy()
        sigma = np.linalg.norm(b, axis=1)  # (R,)
        if product:
            volume *= sigma
        slot = t % slots
        if t >= slots:  # queue full: evict the oldest basis, restore its projection
            sq += proj[:, slot] ** 2
        keep = sigma > floor
        b *= (np.where(keep, 1.0 / np.where(keep, sigma, 1.0), 0.0).astype(dtype))[:, None]  # unit or zero
        q = np.matmul(v, b[:, :, None])[:, :, 0]  # (R, N) v_i · b
        sq -= q * q
        bases[:, slot] = b
        proj[:, slot] = q
    return out


def _ssd_single(
    rel: np.ndarray,
    v: np.ndarray,
    sq: np.ndarray,
    k: int,
    window: int | None,
    weight: float,
    product: bool,
    first: np.ndarray | None = None,
) -> np.ndarray:
    """`_ssd_greedy` for one request on 2-D arrays: the same steps without batch indexing (small-N latency is
    dominated by per-call overhead).  rel (N,), v (N,D), sq (N,) -> (k,) int64, -1 padded."""
    n, dim = v.shape
    dtype = v.dtype
    out = np.full(k, -1, dtype=np.int64)
    if k == 0 or n == 0:
        return out
    slots = k if window is None else window - 1
    bases = np.zeros((max(slots, 1), dim), dtype=dtype)  # (m, D)
    proj = np.zeros((max(slots, 1), n), dtype=dtype)  # (m, N)
    sq = sq.copy()
    base = rel.astype(dtype, copy=True)
    volume = 1.0
    floor = numerical_floor(dtype) * math.sqrt(float(sq.max()))
    norm = np.empty_like(sq)
    obj = np.empty_like(sq)
    for t in range(k):
        np.maximum(sq, 0, out=sq)
        np.sqrt(sq, out=norm)
        np.multiply(norm, weight * volume if product else weight, out=obj)
        obj += base
        if t == 0 and first is not None:
            obj[:] = first
        j = int(obj.argmax())
        if not obj[j] > -np.inf:
            break
        out[t] = j
        base[j] = -np.inf
        if slots == 0 or t == k - 1:
            continue
        vj = v[j]
        filled = min(t, slots)
        b = vj - (bases[:filled] @ vj) @ bases[:filled] if filled else vj.copy()  # (D,)
        sigma = math.sqrt(float(b @ b))
        if product:
            volume *= sigma
        slot = t % slots
        if t >= slots:
            old = proj[slot]
            old *= old
            sq += old
        if sigma > floor:
            b /= sigma
            q = v @ b  # (N,)
            proj[slot] = q
            q *= q
            sq -= q
        else:
            b[:] = 0.0
            proj[slot] = 0.0
        bases[slot] = b
    return out


def _run(rel, v, sq, k, window, weight, product, first=None) -> np.ndarray:
    if rel.shape[0] == 1:
        return _ssd_single(rel[0], v[0], sq[0], k, window, weight, product, None if first is None else first[0])[None]
    return _ssd_greedy(rel, v, sq, k, window, weight, product, first)


def _prepare(scores, embeddings, k, window, normalize_embeddings, bias, normalize_scores, dtype):
    check_window(window)
    s, e, batched = check_inputs(scores, embeddings, k)
    dt = resolve_dtype(dtype)
    v, sq = prepare_embeddings(e, normalize=normalize_embeddings, bias=bias, dtype=dt, batched=batched)
    return relevance(s, normalize_scores), v, sq, min(k, s.shape[1]), batched


def ssd(
    scores,
    embeddings,
    k: int,
    *,
    gamma: float = 1.0,
    window: int | None = None,
    normalize_embeddings: bool = True,
    bias: bool = True,
    normalize_scores: bool = True,
    dtype=np.float32,
) -> np.ndarray:
    """Original SSD, product form: greedily maximise Σ r + γ · ∏ σ.

    Args:
        scores: (N,) or (R, N) relevance; -inf excludes a candidate.
        embeddings: (N, d) or (R, N, d).
        k: list length; k > N returns all N.
        gamma: weight γ ≥ 0 of the volume term.
        window: feed positions that interact, counting the new item (None: no eviction).
        normalize_embeddings: unit-normalise rows first.
        bias: append the constant-1 dimension after normalising.
        normalize_scores: z-score scores per request.
        dtype: float32 (fast) or float64.

    Returns:
        (min(k, N),) or (R, min(k, N)) int64 indices in feed order; -1 where nothing valid was left.
    """
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    rel, v, sq, kk, batched = _prepare(
        scores, embeddings, k, window, normalize_embeddings, bias, normalize_scores, dtype
    )
    out = _run(rel, v, sq, kk, window, float(gamma), product=True)
    return out if batched else out[0][out[0] >= 0]


def ssd_star(
    scores,
    embeddings,
    k: int,
    *,
    theta: float = 0.5,
    gamma: float = 1.0,
    window: int | None = None,
    normalize_embeddings: bool = True,
    bias: bool = True,
    normalize_scores: bool = True,
    dtype=np.float32,
) -> np.ndarray:
    """Stabilised SSD* (paper Eq. 12): greedily pick argmax θ · r_i + (1 − θ) · γ · σ_i.

    Args:
        theta: relevance weight θ in [0, 1] (pyversity's `diversity` = 1 − θ); 1 = pure relevance.
        gamma: diversity scale γ ≥ 0.
        (others as in `ssd`)

    Returns:
        (min(k, N),) or (R, min(k, N)) int64 indices in feed order; -1 where nothing valid was left.
    """
    check_unit_interval("theta", theta)
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    rel, v, sq, kk, batched = _prepare(
        scores, embeddings, k, window, normalize_embeddings, bias, normalize_scores, dtype
    )
    first = rel if normalize_embeddings else None
    rel = theta * rel if theta > 0 else np.where(np.isfinite(rel), 0.0, -np.inf)  # θ = 0: no -inf * 0 = NaN
    out = _run(rel, v, sq, kk, window, (1.0 - theta) * float(gamma), product=False, first=first)
    return out if batched else out[0][out[0] >= 0]
