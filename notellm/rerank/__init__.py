"""Diversity re-ranking: SSD (both forms), DPP (fast greedy + sliding window), MMR, and list metrics."""

from __future__ import annotations

from notellm.rerank.api import METHODS, RerankConfig, relevance_order, rerank, rerank_batch
from notellm.rerank.dpp import dpp
from notellm.rerank.metrics import (
    batch_diversity,
    category_coverage,
    ilad,
    ilmd,
    list_metrics,
    ndcg_vs_original,
    score_ratio,
    windowed,
)
from notellm.rerank.mmr import mmr
from notellm.rerank.ssd import ssd, ssd_star

__all__ = [
    "METHODS",
    "RerankConfig",
    "batch_diversity",
    "category_coverage",
    "dpp",
    "ilad",
    "ilmd",
    "list_metrics",
    "mmr",
    "ndcg_vs_original",
    "relevance_order",
    "rerank",
    "rerank_batch",
    "score_ratio",
    "ssd",
    "ssd_star",
    "windowed",
]
