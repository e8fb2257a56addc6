"""Trivial baselines that a generated category / hashtag list must beat, and a diversity figure for any generator.

- `most_frequent`: every note gets the training notes' most frequent category and their k most frequent tags.
- `knn_vote`: every note gets the category and tags voted by its nearest training notes under one embedding:
  each of the `neighbours` nearest training notes votes for its own category/tags with weight = its cosine to the
  note; ties are broken by vote count, then by name, so the result is deterministic.
- `diversity`: distinct generated tags per note, and the share of notes that got the modal (most common) tag list:
  a decoder that gives most notes the same list has share near 1, whatever its BLEU says.
"""

from __future__ import annotations

from collections import Counter

import numpy as np


def _top(weights: dict[str, float], counts: Counter, k: int) -> list[str]:
    return sorted(weights, key=lambda t: (-weights[t], -counts[t], t))[:k]


def most_frequent(train_labels: list[list[str]], k: int) -> list[str]:
    """The k labels that occur on the most training notes (ties by name)."""
    counts = Counter(label for labels in train_labels for label in dict.fromkeys(labels) if label)
    return _top({t: float(c) for t, c in counts.items()}, counts, k)


def knn_vote(query_vectors: np.ndarray, train_vectors: np.ndarray, train_labels: list[list[str]], k: int,
             neighbours: int = 10, chunk: int = 1024) -> list[list[str]]:
    """Per query row, the k labels with the largest cosine-weighted vote of its `neighbours` nearest training rows.

    Args:
        query_vectors: (q, d) and train_vectors: (n, d), unit-norm (the pool's `NoteVectors` are).
        train_labels: per training row, its labels (tags, or a one-element category list).
    """
    if len(train_vectors) != len(train_labels):
        raise ValueError(f"knn_vote: {len(train_vectors)} training vectors but {len(train_labels)} label lists")
    if not len(train_vectors):
        raise ValueError("knn_vote needs at least one training note")
    m = min(neighbours, len(train_vectors))
    out: list[list[str]] = []
    for start in range(0, len(query_vectors), chunk):
        scores = query_vectors[start : start + chunk] @ train_vectors.T  # (c, n)
        nearest = np.argpartition(-scores, m - 1, axis=1)[:, :m]  # (c, m), unordered
        for row, cols in enumerate(nearest):
            weights: dict[str, float] = {}
            counts: Counter = Counter()
            for j in cols:
                for label in dict.fromkeys(train_labels[j]):
                    if label:
                        weights[label] = weights.get(label, 0.0) + float(scores[row, j])
                        counts[label] += 1
            out.append(_top(weights, counts, k))
    return out


def diversity(predicted: list[list[str]]) -> dict:
    """distinct tags / notes, the share of notes whose (order-free) tag list is the modal one, and that list."""
    if not predicted:
        return {"distinct_per_note": float("nan"), "modal_share": float("nan"), "modal_list": [], "n": 0}
    lists = Counter(tuple(sorted(p)) for p in predicted)
    modal, count = lists.most_common(1)[0]
    distinct = {t for p in predicted for t in p}
    return {"distinct_per_note": len(distinct) / len(predicted), "modal_share": count / len(predicted),
            "modal_list": list(modal), "n": len(predicted)}
