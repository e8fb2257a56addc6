"""Evaluation: ranking metrics, the I2I protocol (docs/method.md §5.2; paper and code rules), generation
metrics, baselines.

Heavy baselines (zero-shot LLMs, SentenceBERT) live in their own modules and import torch lazily.
"""

from __future__ import annotations

from notellm.evaluation.generation import category_metrics, hashtag_metrics
from notellm.evaluation.metrics import mrr, ndcg_at_k, recall_at_k, recall_ks, summarize
from notellm.evaluation.protocol import EmbeddingScorer, Scorer, build_queries, evaluate_queries, links_queries

__all__ = ["EmbeddingScorer", "Scorer", "build_queries", "category_metrics", "evaluate_queries", "hashtag_metrics",
           "links_queries", "mrr", "ndcg_at_k", "recall_at_k", "recall_ks", "summarize"]
