"""One interface over every re-ranker: `rerank(scores, embeddings, k, method, **params) -> ordered indices`.

| method       | objective per greedy step                                   | main parameters               |
|--------------|-------------------------------------------------------------|-------------------------------|
| `none`       | r_i (relevance order)                                       |                               |
| `mmr`        | λ r_i − (1 − λ) max_{j∈S} cos(i, j)                         | lam, window                   |
| `dpp`        | log det gain of L = diag(e^{αr}) S diag(e^{αr}), ε stop     | theta or alpha, epsilon       |
| `dpp_window` | the same, conditioned on the last w − 1 picks (Algorithm 2) | theta or alpha, window, eps   |
| `ssd`        | r_i + γ · C · σ_i  (original product form)                  | gamma, window                 |
| `ssd_star`   | θ r_i + (1 − θ) γ σ_i  (stabilised SSD*, Eq. 12)            | theta, gamma, window          |

All take (N,) + (N, d) for one request or (R, N) + (R, N, d) for a batch, z-score scores per request by default,
and accept `dtype=np.float64` for exactness. `window` always counts the new item.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from notellm.rerank.dpp import dpp
from notellm.rerank.inputs import check_inputs, score_order
from notellm.rerank.mmr import mmr
from notellm.rerank.ssd import ssd, ssd_star


def relevance_order(scores, embeddings, k: int, **params: Any) -> np.ndarray:
    """No re-ranking: the top-k by score (stable), same shapes and -1 padding as the re-rankers."""
    if params:
        raise TypeError(f"method 'none' takes no parameters, got {sorted(params)}")
    s, _, batched = check_inputs(scores, embeddings, k)
    return score_order(s, k, batched)


def _dpp_window(scores, embeddings, k: int, *, window: int = 10, **params: Any) -> np.ndarray:
    if window is None:
        raise ValueError("dpp_window needs an integer window (use method 'dpp' for no window)")
    return dpp(scores, embeddings, k, window=window, **params)


METHODS: dict[str, Callable[..., np.ndarray]] = {
    "none": relevance_order,
    "mmr": mmr,
    "dpp": dpp,
    "dpp_window": _dpp_window,
    "ssd": ssd,
    "ssd_star": ssd_star,
}


def rerank(scores, embeddings, k: int, method: str = "ssd_star", **params: Any) -> np.ndarray:
    """Re-rank one request (or a batch) with `method`; see the module table for parameters.

    Args:
        scores: (N,) or (R, N) relevance scores; -inf excludes a candidate.
        embeddings: (N, d) or (R, N, d).
        k: list length; k > N returns all N (DPP may stop earlier, by its ε rule).
        method: one of `METHODS`.
        **params: method parameters (unknown names raise TypeError naming them).

    Returns:
        (≤ k,) int64 candidate indices in feed order, or (R, min(k, N)) padded with -1 for a batch.
    """
    try:
        fn = METHODS[method]
    except KeyError:
        raise ValueError(f"unknown rerank method {method!r}; choose from {sorted(METHODS)}") from None
    try:
        return fn(scores, embeddings, k, **params)
    except TypeError as exc:
        if "unexpected keyword" in str(exc) or "takes no parameters" in str(exc):
            raise TypeError(f"rerank method {method!r}: {exc}") from None
        raise


def rerank_batch(scores, embeddings, k: int, method: str = "ssd_star", **params: Any) -> np.ndarray:
    """Batched form: scores (R, N), embeddings (R, N, d) -> (R, min(k, N)) int64, -1 padded."""
    if np.ndim(scores) != 2:
        raise ValueError(f"rerank_batch: scores must be (R, N), got shape {np.shape(scores)}")
    return rerank(scores, embeddings, k, method, **params)


@dataclass
class RerankConfig:
    """Which re-ranker a feed or a service uses, and its parameters."""

    method: str = "ssd_star"
    """One of: none, mmr, dpp, dpp_window, ssd, ssd_star."""
    k: int = 20
    """Items per re-ranked list."""
    params: dict[str, Any] = field(default_factory=dict)
    """Method parameters, e.g. {theta: 0.5, gamma: 1.0, window: 10}; checked against the method's signature."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {self.method!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        probe_scores, probe_emb = np.zeros(2), np.eye(2)
        rerank(probe_scores, probe_emb, 1, self.method, **self.params)  # raises on unknown / invalid params
