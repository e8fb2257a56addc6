"""The one L2 normaliser and the one exact top-k of the package (every caller ranks and normalises through these).

`top_k` is defined as "the first k of a stable descending sort": best score first, ties in ascending row order.
That is what a brute-force `np.argsort(-scores, kind="stable")[:k]` returns, so callers (and tests) can compare
against brute force exactly, ties included; `argpartition` alone would break ties arbitrarily.
"""

from __future__ import annotations

import numpy as np


def l2_normalize(matrix: np.ndarray, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Unit rows along the last axis, cast to `dtype`; zero rows stay zero.  (..., d) -> (..., d)"""
    x = np.asarray(matrix, dtype=dtype)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1).astype(x.dtype)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best scores per row, best first, ties by position.  (N,) -> (k',) or (R, N) -> (R, k')

    k' = min(k, N). `-inf` marks an excluded entry: it sorts last (callers drop it when they need fewer rows); NaN
    is refused. Equal to `np.argsort(-scores, axis=-1, kind="stable")[..., :k]`, without sorting whole rows: a
    partition finds each row's k-th best value, and only the entries at or above it (k plus any ties) are sorted.
    """
    s = np.asarray(scores)
    if s.ndim not in (1, 2):
        raise ValueError(f"top_k: scores must be (N,) or (R, N), got shape {s.shape}")
    if k < 0:
        raise ValueError(f"top_k: k must be >= 0, got {k}")
    rows = np.atleast_2d(s)
    n_rows, n = rows.shape
    k = min(int(k), n)
    if np.isnan(rows).any():
        raise ValueError("top_k: scores contain NaN")
    if k == 0:
        out = np.zeros((n_rows, 0), dtype=np.int64)
    elif k == n or n <= 64:  # short rows: one stable sort is the fastest exact answer
        out = np.argsort(-rows, axis=1, kind="stable")[:, :k]
    else:
        kth = np.partition(rows, n - k, axis=1)[:, n - k]  # (R,) the k-th best value of each row
        r, c = np.nonzero(rows >= kth[:, None])  # every top-k entry (and ties with the k-th), row-major
        order = np.lexsort((c, -rows[r, c], r))  # by row, then score descending, then position
        r, c = r[order], c[order]
        starts = np.concatenate(([0], np.cumsum(np.bincount(r, minlength=n_rows))[:-1]))  # >= k entries per row
        out = c[starts[:, None] + np.arange(k)]
    return out[0] if s.ndim == 1 else out
