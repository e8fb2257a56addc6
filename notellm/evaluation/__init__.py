"""Evaluation: ranking metrics, the I2I protocol (docs/method.md §5.2; paper and code rules), bootstrap intervals,
embedding-space health, generation metrics and baselines, and the harness the pipelines compose (`harness.py`).

Heavy baselines (zero-shot LLMs, SentenceBERT) live in their own modules and import torch lazily.
"""

from __future__ import annotations

from notellm.evaluation.bootstrap import BootstrapConfig, metric_intervals, paired_difference
from notellm.evaluation.generation import category_metrics, hashtag_metrics
from notellm.evaluation.generation_baselines import diversity, knn_vote, most_frequent
from notellm.evaluation.health import embedding_health
from notellm.evaluation.metrics import mrr, ndcg_at_k, per_query, recall_at_k, recall_ks, summarize
from notellm.evaluation.protocol import EmbeddingScorer, Scorer, build_queries, evaluate_queries, links_queries
from notellm.evaluation.results import RetrievalTable, build_table, comparison_sentences, verdict

__all__ = ["BootstrapConfig", "EmbeddingScorer", "RetrievalTable", "Scorer", "build_queries", "build_table",
           "category_metrics", "comparison_sentences", "diversity", "embedding_health", "evaluate_queries",
           "hashtag_metrics", "knn_vote", "links_queries", "metric_intervals", "most_frequent", "mrr", "ndcg_at_k",
           "paired_difference", "per_query", "recall_at_k", "recall_ks", "summarize", "verdict"]
