"""Ranking metrics for one ground-truth item per query: Recall@K, MRR, NDCG@K. Pure numpy, no I/O.

Every metric takes the target's *rank interval*: `greater[i]` candidates score strictly above query i's ground
truth and `ties[i]` other candidates score exactly the same. Ties are broken uniformly at random, and the metrics are
the exact expectation over that tie-break (hand-written: no library scores tied ranks this way). This matters for
scorers with many equal scores (BM25 without shared words, ItemCF on cold notes) and is identical to the plain
definition when there are no ties. Ranks are 0-based: a hit at K means rank < K (docs/method.md §5.2,
`eval_recall.py`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma

STANDARD_KS = (1, 5, 10, 20, 50, 100, 1_000, 10_000, 100_000, 1_000_000)


def recall_ks(pool_size: int, ks: tuple[int, ...] = STANDARD_KS) -> list[int]:
    """The standard K values that are meaningful for a pool of `pool_size` candidates (K < pool size)."""
    return [k for k in ks if k < pool_size] or [max(1, pool_size - 1)]


def hit_probability(greater: np.ndarray, ties: np.ndarray, k: int) -> np.ndarray:
    """P(rank < k) per query when the rank is uniform on {greater, ..., greater + ties}."""
    greater, ties = np.asarray(greater, dtype=np.float64), np.asarray(ties, dtype=np.float64)
    return np.clip(k - greater, 0.0, ties + 1.0) / (ties + 1.0)


def recall_at_k(greater: np.ndarray, ties: np.ndarray, k: int) -> float:
    """Fraction of queries whose ground truth ranks in the top k (expected over random tie-breaks)."""
    return float(hit_probability(greater, ties, k).mean()) if len(greater) else float("nan")


def reciprocal_rank(greater: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """E[1 / (rank + 1)] per query: (H(g + t + 1) - H(g)) / (t + 1), with H the harmonic number."""
    g, t = np.asarray(greater, dtype=np.float64), np.asarray(ties, dtype=np.float64)
    # H(n) = digamma(n + 1) + euler_gamma; the constant cancels in the difference.
    return (digamma(g + t + 2.0) - digamma(g + 1.0)) / (t + 1.0)


def mrr(greater: np.ndarray, ties: np.ndarray) -> float:
    return float(reciprocal_rank(greater, ties).mean()) if len(greater) else float("nan")


def ndcg_gain(greater: np.ndarray, ties: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query, E[1 / log2(rank + 2)] if rank < k else 0: NDCG@k with one relevant item (IDCG = 1)."""
    gains = 1.0 / np.log2(np.arange(k) + 2.0)  # (k,) gain at ranks 0..k-1
    cum = np.concatenate([[0.0], np.cumsum(gains)])  # cum[r] = sum of gains at ranks < r
    g = np.asarray(greater, dtype=np.int64)
    t = np.asarray(ties, dtype=np.int64)
    lo, hi = np.minimum(g, k), np.minimum(g + t + 1, k)  # ranks in [lo, hi) earn gain
    return (cum[hi] - cum[lo]) / (t + 1.0)


def ndcg_at_k(greater: np.ndarray, ties: np.ndarray, k: int = 10) -> float:
    """NDCG@k with one relevant item (IDCG = 1), averaged over queries."""
    return float(ndcg_gain(greater, ties, k).mean()) if len(greater) else float("nan")


def per_query(greater: np.ndarray, ties: np.ndarray, ks: list[int]) -> dict[str, np.ndarray]:
    """Each metric of `summarize` per query (its mean over queries is the summary value): the input of the
    bootstrap (`bootstrap.py`)."""
    out = {f"recall@{k}": hit_probability(greater, ties, k) for k in ks}
    out["recall_avg"] = np.mean([out[f"recall@{k}"] for k in ks], axis=0) if len(greater) else np.zeros(0)
    out["mrr"] = reciprocal_rank(greater, ties)
    out["ndcg@10"] = ndcg_gain(greater, ties, 10)
    return out


def summarize(greater: np.ndarray, ties: np.ndarray, ks: list[int]) -> dict[str, float]:
    """Recall@K for each K, their average (`recall_avg`, like the paper's Avg), MRR, NDCG@10 and the query count."""
    out: dict[str, float] = {f"recall@{k}": recall_at_k(greater, ties, k) for k in ks}
    out["recall_avg"] = float(np.mean([out[f"recall@{k}"] for k in ks])) if len(greater) else float("nan")
    out["mrr"] = mrr(greater, ties)
    out["ndcg@10"] = ndcg_at_k(greater, ties, 10)
    out["n_queries"] = int(len(greater))
    return out


def ranks_from_scores(scores: np.ndarray, target_col: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank interval of each row's target among that row's valid candidates.

    Args:
        scores: (nq, nc) scores, higher is better.
        target_col: (nq,) column of each query's ground truth (must be valid).
        valid: (nq, nc) bool, True for candidates in that query's pool (the target included).

    Returns:
        greater (nq,) and ties (nq,): counts of valid candidates scoring above / equal to the target, target excluded.
    """
    rows = np.arange(scores.shape[0])
    target = scores[rows, target_col][:, None]  # (nq, 1)
    greater = ((scores > target) & valid).sum(axis=1)
    ties = ((scores == target) & valid).sum(axis=1) - 1  # minus the target itself
    return greater.astype(np.int64), np.maximum(ties, 0).astype(np.int64)
