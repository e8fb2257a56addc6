"""Validation and preparation shared by every re-ranker: shapes, NaNs, z-scores, unit rows, the bias dimension.

Conventions (all re-rankers):
- A request is `scores (N,)` + `embeddings (N, d)`; a batch is `scores (R, N)` + `embeddings (R, N, d)`.
- A score of `-inf` marks a padding / excluded candidate: it is never selected, and batched outputs hold `-1` in
  slots no valid candidate could fill (the faiss convention). `+inf` and NaN are errors.
- Per-request score normalisation is a z-score over the valid candidates (pyversity does the same for SSD "to
  stabilise gamma"); it makes every trade-off parameter independent of the score scale of the upstream ranker.
"""

from __future__ import annotations

import numpy as np

from notellm.retrieval.exact import top_k


def check_inputs(scores, embeddings, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate one request or a batch; returns `(scores (R,N) float64, embeddings (R,N,d), batched)`.

    Embeddings keep their dtype here (no copy of a large matrix); their finiteness is checked cheaply through the
    row norms in `prepare_embeddings`.

    Raises:
        ValueError: naming `scores`, `embeddings` or `k` when shapes disagree or scores are NaN / +inf.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer, got {k!r}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    s = np.asarray(scores, dtype=np.float64)
    e = np.asarray(embeddings)
    if not np.issubdtype(e.dtype, np.number):
        raise ValueError(f"embeddings must be numeric, got dtype {e.dtype}")
    if s.ndim not in (1, 2):
        raise ValueError(f"scores must be (N,) or (R, N), got shape {s.shape}")
    batched = s.ndim == 2
    if e.ndim != s.ndim + 1:
        want = "(R, N, d)" if batched else "(N, d)"
        raise ValueError(f"embeddings must be {want} to match scores {s.shape}, got shape {e.shape}")
    if e.shape[:-1] != s.shape:
        raise ValueError(f"embeddings rows {e.shape[:-1]} do not match scores shape {s.shape}")
    if not batched:
        s, e = s[None], e[None]
    for bad, what in ((np.isnan(s), "NaN"), (np.isposinf(s), "+inf (use -inf to exclude a candidate)")):
        if bad.any():
            r, n = np.argwhere(bad)[0]
            raise ValueError(f"scores{[int(r), int(n)] if batched else [int(n)]} is {what}")
    if e.shape[-1] == 0 and e.shape[1] > 0:
        raise ValueError("embeddings have dimension 0")
    return s, e, batched


def prepare_embeddings(
    embeddings: np.ndarray, *, normalize: bool, bias: bool, dtype: np.dtype, batched: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Cast, optionally unit-normalise and append the bias dimension.  (R,N,d) -> V (R,N,d'), sq (R,N)

    `sq` holds the exact squared row norms of V (1 or 2 by construction when normalised, so the first greedy step
    sees no round-off differences between candidates).

    Raises:
        ValueError: naming the first `embeddings` row that holds NaN or inf.
    """
    v = np.asarray(embeddings, dtype=dtype)
    norms = np.sqrt(np.einsum("rnd,rnd->rn", v, v))  # (R, N)
    if not np.isfinite(norms.sum()):
        r, n = (int(i) for i in np.argwhere(~np.isfinite(norms))[0])
        raise ValueError(f"embeddings{[r, n] if batched else [n]} holds NaN or inf")
    if normalize:
        v = v / np.maximum(norms, np.finfo(dtype).tiny)[..., None]  # zero rows stay zero
        sq = (norms > 0).astype(dtype)
    else:
        sq = (norms * norms).astype(dtype)
    if bias:
        v = append_bias(v)
        sq = sq + 1
    return np.ascontiguousarray(v), sq


def zscore(scores: np.ndarray) -> np.ndarray:
    """Per-row z-score over finite entries; `-inf` stays `-inf`; a constant row becomes zeros.  (R, N) -> (R, N)"""
    if scores.size == 0:
        return scores.copy()
    if np.isfinite(scores).all():  # fast path: no excluded candidates
        centred = scores - scores.mean(axis=1, keepdims=True)
        std = np.sqrt(np.einsum("rn,rn->r", centred, centred) / scores.shape[1])[:, None]
        return centred / np.where(std > 0, std, 1.0)
    valid = np.isfinite(scores)
    count = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    mean = np.where(valid, scores, 0.0).sum(axis=1, keepdims=True) / count
    centred = np.where(valid, scores - mean, 0.0)
    std = np.sqrt((centred**2).sum(axis=1, keepdims=True) / count)
    return np.where(valid, centred / np.where(std > 0, std, 1.0), -np.inf)


def append_bias(embeddings: np.ndarray) -> np.ndarray:
    """Append a constant-1 dimension (SSD paper's "extra dimension", docs/method.md §8.1).  (..., d) -> (..., d+1)

    After unit-normalisation, ⟨[u,1],[v,1]⟩ = 1 + cos(u, v) ≥ 0: anti-parallel items become orthogonal, so a
    volume is largest exactly when cosine says "most dissimilar", and every starting norm is equal (√2).
    """
    ones = np.ones(embeddings.shape[:-1] + (1,), dtype=embeddings.dtype)
    return np.concatenate([embeddings, ones], axis=-1)


def score_order(scores: np.ndarray, k: int, batched: bool) -> np.ndarray:
    """The un-reranked list: top-k by score, ties by position (the package's one exact top-k); -1 pads slots that
    only excluded (-inf) candidates could fill, which a single request drops.  (R, N) -> (R, k') or (k'',)"""
    order = top_k(scores, k)
    order = np.where(np.isfinite(np.take_along_axis(scores, order, 1)), order, -1)
    return order if batched else order[0][order[0] >= 0]


def relevance(scores: np.ndarray, normalize_scores: bool) -> np.ndarray:
    """The relevance term every objective uses: z-scored (default) or raw; `-inf` kept."""
    return zscore(scores) if normalize_scores else scores.copy()


def numerical_floor(dtype: np.dtype) -> float:
    """Below this a residual norm (relative to a unit vector) is round-off, i.e. the item lies in the span."""
    return float(np.finfo(dtype).eps) * 100.0


def resolve_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def check_window(window: int | None) -> None:
    if window is not None and (isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1):
        raise ValueError(f"window must be None or an integer >= 1, got {window!r}")


def check_unit_interval(name: str, value: float, *, closed_right: bool = True) -> None:
    ok = 0.0 <= value <= 1.0 if closed_right else 0.0 <= value < 1.0
    if not ok or np.isnan(value):
        raise ValueError(f"{name} must be in [0, 1{']' if closed_right else ')'}, got {value!r}")
