"""Embedding-space health of one method's pool vectors: is the space collapsed (every note close to every other)?

- `mean_random_cosine`: the mean cosine of random distinct note pairs (seeded). Above 0.9 (`COLLAPSE_COSINE`) the
  space is collapsed/anisotropic: neighbours all score 0.98–0.99 and a ranking rests on tiny differences.
- `effective_rank`: exp(entropy of the normalised singular values) of the unit-norm vectors (Roy & Vetterli 2007):
  from 1 (every vector on one direction) to the dimension (all directions used evenly).
- `top1_score` / `far_score`: the mean cosine of each note's nearest neighbour and of its 100th (or, in a pool of
  at most 100 notes, its last) neighbour; their gap is how much room the ranking has.
"""

from __future__ import annotations

import numpy as np

from notellm.evaluation.results import EmbeddingHealth

FAR_RANK = 100


def embedding_health(matrix: np.ndarray, seed: int = 0, pairs: int = 5000, queries: int = 500) -> EmbeddingHealth:
    """Health figures of (n, d) vectors (normalised here; n >= 2)."""
    x = np.asarray(matrix, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"embedding health needs at least two vectors, got shape {x.shape}")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    n = len(x)
    a = rng.integers(0, n, pairs)
    b = (a + rng.integers(1, n, pairs)) % n  # never a itself
    mean_cos = float(np.einsum("ij,ij->i", x[a], x[b]).mean())
    s = np.linalg.svd(x, compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    eff_rank = float(np.exp(-(p * np.log(p)).sum()))
    rows = rng.choice(n, size=min(queries, n), replace=False)
    scores = x[rows] @ x.T  # (q, n)
    scores[np.arange(len(rows)), rows] = -np.inf  # a note is not its own neighbour
    far = min(FAR_RANK, n - 1)
    ordered = -np.sort(-scores, axis=1)[:, :far]  # (q, far) best first
    return EmbeddingHealth(mean_random_cosine=mean_cos, effective_rank=eff_rank, dim=int(x.shape[1]),
                           top1_score=float(ordered[:, 0].mean()), far_rank=far,
                           far_score=float(ordered[:, far - 1].mean()), notes=n)
