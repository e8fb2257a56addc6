"""Diversity and relevance-kept metrics for one re-ranked list. Pure numpy, no I/O.

Distances are 1 − cosine (in [0, 2]). A list of fewer than two items has no pairs: ILAD / ILMD are NaN.
- ILAD: mean pairwise distance within the list; ILMD: minimum pairwise distance.
- Windowed forms: the mean over every window of `w` consecutive items (what a user sees on one screen).
- Category coverage: distinct categories in the list (and as a share of those among the candidates).
- Relevance kept: Σ score(list) / Σ score(top-k by score), and NDCG of the list with the candidates' own scores as
  graded gains (shifted so the lowest candidate has gain 0); the un-reranked top-k scores 1.0 on both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from notellm.retrieval.exact import l2_normalize


def distance_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Pairwise 1 − cosine of the rows.  (n, d) -> (n, n)"""
    u = l2_normalize(embeddings, dtype=np.float64)
    return 1.0 - np.clip(u @ u.T, -1.0, 1.0)


def ilad(embeddings: np.ndarray) -> float:
    """Intra-list average distance of the list whose item embeddings are the rows (in feed order)."""
    n = len(embeddings)
    if n < 2:
        return float("nan")
    dist = distance_matrix(embeddings)
    return float(dist[np.triu_indices(n, 1)].mean())


def ilmd(embeddings: np.ndarray) -> float:
    """Intra-list minimum distance (the closest pair)."""
    n = len(embeddings)
    if n < 2:
        return float("nan")
    dist = distance_matrix(embeddings)
    return float(dist[np.triu_indices(n, 1)].min())


def windowed(metric, embeddings: np.ndarray, window: int) -> float:
    """Mean of `metric` (ilad or ilmd) over all windows of `window` consecutive items; the whole list if shorter."""
    if window < 2:
        raise ValueError(f"window must be >= 2 for a pairwise metric, got {window}")
    n = len(embeddings)
    if n <= window:
        return metric(embeddings)
    return float(np.mean([metric(embeddings[i : i + window]) for i in range(n - window + 1)]))


def category_coverage(list_categories: Sequence[str], candidate_categories: Sequence[str] | None = None) -> dict:
    """`{"categories": distinct in the list, "coverage": that / distinct among candidates (if given)}`."""
    distinct = len(set(list_categories))
    out = {"categories": float(distinct)}
    if candidate_categories is not None:
        pool = len(set(candidate_categories))
        out["coverage"] = distinct / pool if pool else float("nan")
    return out


def score_ratio(scores: np.ndarray, order: np.ndarray) -> float:
    """Σ scores[order] / Σ top-len(order) scores: the share of relevance a re-ranked list keeps (scores ≥ 0)."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.asarray(order, dtype=np.int64)
    best = np.sort(scores)[::-1][: len(order)].sum()
    return float(scores[order].sum() / best) if best > 0 else float("nan")


def ndcg_vs_original(scores: np.ndarray, order: np.ndarray) -> float:
    """NDCG@len(order) of the list, gains = scores − min(scores), ideal = the un-reranked (score) order."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.asarray(order, dtype=np.int64)
    if len(order) == 0:
        return float("nan")
    gains = scores - scores.min()
    discount = 1.0 / np.log2(np.arange(2, len(order) + 2))
    ideal = (np.sort(gains)[::-1][: len(order)] * discount).sum()
    return float((gains[order] * discount).sum() / ideal) if ideal > 0 else 1.0


def list_metrics(
    embeddings: np.ndarray,
    scores: np.ndarray,
    order: np.ndarray,
    categories: Sequence[str] | None = None,
    window: int | None = None,
) -> dict[str, float]:
    """Every metric for one list: `order` indexes the candidates (`embeddings` (N, d), `scores` (N,))."""
    order = np.asarray(order, dtype=np.int64)
    chosen = np.asarray(embeddings)[order]
    out = {
        "ilad": ilad(chosen),
        "ilmd": ilmd(chosen),
        "score_ratio": score_ratio(scores, order),
        "ndcg": ndcg_vs_original(scores, order),
    }
    if window is not None:
        out[f"ilad@w{window}"] = windowed(ilad, chosen, window)
        out[f"ilmd@w{window}"] = windowed(ilmd, chosen, window)
    if categories is not None:
        cats = list(categories)
        out.update(category_coverage([cats[i] for i in order], cats))
    return out


def batch_diversity(embeddings: np.ndarray, window: int | None = None) -> dict[str, np.ndarray]:
    """ILAD / ILMD (and their windowed means) of many equal-length lists at once.  (U, T, d) -> {name: (U,)}

    Same definitions as `ilad`, `ilmd`, `windowed`; vectorised over lists for feed evaluation.
    """
    u = l2_normalize(embeddings, dtype=np.float64)
    n_lists, length, _ = u.shape
    dist = 1.0 - np.clip(np.einsum("utd,usd->uts", u, u), -1.0, 1.0)  # (U, T, T)

    def block(start: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        iu = np.triu_indices(size, 1)
        pairs = dist[:, start : start + size, start : start + size][:, iu[0], iu[1]]  # (U, pairs)
        return pairs.mean(axis=1), pairs.min(axis=1)

    if length < 2:
        nan = np.full(n_lists, np.nan)
        out = {"ilad": nan, "ilmd": nan}
    else:
        mean, low = block(0, length)
        out = {"ilad": mean, "ilmd": low}
    if window is not None:
        if window < 2:
            raise ValueError(f"window must be >= 2 for a pairwise metric, got {window}")
        if length <= window:
            out[f"ilad@w{window}"], out[f"ilmd@w{window}"] = out["ilad"], out["ilmd"]
        else:
            parts = [block(s, window) for s in range(length - window + 1)]
            out[f"ilad@w{window}"] = np.mean([p[0] for p in parts], axis=0)
            out[f"ilmd@w{window}"] = np.mean([p[1] for p in parts], axis=0)
    return out
