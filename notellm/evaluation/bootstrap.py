"""Paired bootstrap over queries: a 95% interval for each metric and for the difference between two methods.

Every metric here is a mean over queries of a per-query value (`metrics.per_query`), so one resample is a vector
of query counts and its metric is a weighted mean. Resamples in blocks of 100: `weights` is a (100, n) matrix of
draw counts / n and the resampled means are `weights @ values`, one matrix product per block (numpy,
vectorised; memory stays O(100 × n) for any query count).

Pairing: the weights depend only on (n, seed, resamples), so two methods scored on the same queries in the same
order get the SAME resamples, and the interval of their difference is the percentile interval of the per-resample
difference (`paired_difference`). That interval is much narrower than the two separate intervals suggest when the
methods succeed on the same queries. Percentile intervals, not BCa: scipy's `bootstrap` would resample each metric
and each pair separately (1,000 resamples × methods × metrics Python calls); this is one product per method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BootstrapConfig:
    """How intervals are drawn."""

    resamples: int = 1000
    """Bootstrap resamples of the queries."""
    seed: int = 0
    """Seed of the resampling (the same seed and query count give the same resamples: pairing)."""
    level: float = 0.95
    """Coverage of the intervals."""

    def __post_init__(self) -> None:
        if self.resamples < 10:
            raise ValueError(f"bootstrap resamples must be >= 10, got {self.resamples}")
        if not 0.5 <= self.level < 1.0:
            raise ValueError(f"bootstrap level must be in [0.5, 1), got {self.level}")


CHUNK = 100  # resamples drawn per matrix product: memory O(CHUNK × queries), the same draws for any query count


def resample_weights(n: int, cfg: BootstrapConfig) -> np.ndarray:
    """(resamples, n) weights: how often each query is drawn in each resample, divided by n (rows sum to 1)."""
    return np.concatenate(list(_weight_chunks(n, cfg)))


def _weight_chunks(n: int, cfg: BootstrapConfig):
    if n < 1:
        raise ValueError("the bootstrap needs at least one query")
    rng = np.random.default_rng(cfg.seed)
    for start in range(0, cfg.resamples, CHUNK):
        size = min(CHUNK, cfg.resamples - start)
        draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]  # row r's draws, offset r·n
        yield np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64) / n  # (size, n)


def percentile_interval(values: np.ndarray, cfg: BootstrapConfig) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per column of `values` (n, m): percentiles of the resampled column means."""
    means = np.concatenate([w @ values for w in _weight_chunks(len(values), cfg)])  # (B, m)
    tail = 100.0 * (1.0 - cfg.level) / 2.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail], axis=0)
    return lo, hi


def metric_intervals(per_query: dict[str, np.ndarray], cfg: BootstrapConfig) -> dict[str, tuple[float, float, float]]:
    """{metric: (mean, lo, hi)} for per-query metric values (all of one length n)."""
    names = list(per_query)
    values = np.stack([np.asarray(per_query[m], dtype=np.float64) for m in names], axis=1)  # (n, m)
    lo, hi = percentile_interval(values, cfg)
    mean = values.mean(axis=0)
    return {m: (float(mean[j]), float(lo[j]), float(hi[j])) for j, m in enumerate(names)}


def paired_difference(method: dict[str, np.ndarray], reference: dict[str, np.ndarray],
                      cfg: BootstrapConfig) -> dict[str, tuple[float, float, float]]:
    """{metric: (mean difference, lo, hi)} of method − reference over the same queries, same resamples."""
    names = [m for m in method if m in reference]
    for m in names:
        if len(method[m]) != len(reference[m]):
            raise ValueError(f"paired bootstrap: {m} has {len(method[m])} queries for the method and "
                             f"{len(reference[m])} for the reference; both must score the same queries")
    diff = {m: np.asarray(method[m], dtype=np.float64) - np.asarray(reference[m], dtype=np.float64) for m in names}
    return metric_intervals(diff, cfg)


def ratio_intervals(numerators: dict[str, np.ndarray], denominators: dict[str, np.ndarray],
                    cfg: BootstrapConfig) -> dict[str, tuple[float, float]]:
    """{name: (lo, hi)} of Σ numerator / Σ denominator over resampled units (e.g. micro tag precision over notes);
    a resample whose denominator is 0 is left out of the percentiles."""
    names = list(numerators)
    num = np.stack([np.asarray(numerators[m], float) for m in names], axis=1)  # (n, m)
    den = np.stack([np.asarray(denominators[m], float) for m in names], axis=1)
    ratios = []
    for w in _weight_chunks(len(num), cfg):
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios.append((w @ num) / (w @ den))
    r = np.concatenate(ratios)  # (B, m)
    tail = 100.0 * (1.0 - cfg.level) / 2.0
    out = {}
    for j, m in enumerate(names):
        finite = r[:, j][np.isfinite(r[:, j])]
        out[m] = ((float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))) if len(finite)
                  else (float("nan"), float("nan")))
    return out
