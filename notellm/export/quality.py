"""Does a quantised encoder rank as well as the fp32 one? Recall@10 and R@avg of both on a data folder's test pool.

The cosine check in onnx.py bounds the numeric error of int8; this is the check that matters to a recommender: the
paper-rule Recall@K (evaluation/protocol.py) of the reference and the candidate encoder on the same test pool, with
the paired-bootstrap interval of their difference (evaluation/bootstrap.py: the same resamples for both, so the
interval is that of the difference, not of either). A Recall@10 drop of more than `max_drop` points is reported
(`RecallComparison.ok` is False), not hidden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from notellm.retrieval.encode import Encoder

MAX_RECALL_DROP = 1.0  # points of Recall@10 an int8 model may lose against fp32 before we say so


@dataclass
class RecallComparison:
    reference: str
    candidate: str
    recall10_reference: float  # in points (0-100)
    recall10_candidate: float
    queries: int
    pool_size: int
    max_drop: float
    recall_avg_reference: float | None = None  # R@avg (mean of Recall@1..100 below the pool size), in points
    recall_avg_candidate: float | None = None
    recall10_diff_ci: tuple[float, float] | None = None  # paired-bootstrap 95% interval of candidate − reference
    recall_avg_diff_ci: tuple[float, float] | None = None

    @property
    def drop(self) -> float:
        return self.recall10_reference - self.recall10_candidate

    @property
    def ok(self) -> bool:
        return self.drop <= self.max_drop

    def as_dict(self) -> dict:
        return {**asdict(self), "drop": self.drop, "ok": self.ok}

    def describe(self) -> str:
        verdict = "within" if self.ok else "NOT within"
        text = (f"Recall@10 on the test pool ({self.pool_size} notes, {self.queries} queries): {self.reference} "
                f"{self.recall10_reference:.2f}, {self.candidate} {self.recall10_candidate:.2f} "
                f"({-self.drop:+.2f} points{_ci(self.recall10_diff_ci)}; {verdict} {self.max_drop:g} point of the "
                "reference)")
        if self.recall_avg_reference is not None and self.recall_avg_candidate is not None:
            diff = self.recall_avg_candidate - self.recall_avg_reference
            text += (f"; R@avg {self.recall_avg_reference:.2f} vs {self.recall_avg_candidate:.2f} "
                     f"({diff:+.2f}{_ci(self.recall_avg_diff_ci)})")
        return text


def _ci(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f", 95% CI {interval[0]:+.2f} to {interval[1]:+.2f}"


def pool_result(encoder: Encoder, data_dir: str | Path, progress: bool = False) -> dict:
    """`evaluate_queries`'s raw result (per-query rank intervals included) of `encoder` on the test pool, paper rule:
    the standard Ks below the pool size (R@avg is their mean, as in the report), and K = 10 even in a tiny pool."""
    from notellm.evaluation.harness import EvalContext
    from notellm.evaluation.metrics import recall_ks
    from notellm.evaluation.protocol import EmbeddingScorer, build_queries, evaluate_queries
    from notellm.retrieval.encode import encode_notes

    ctx = EvalContext.from_data_dir(data_dir)
    vectors = encode_notes(encoder, ctx.pool_notes(), progress=progress)
    queries = build_queries(ctx.test_pairs, ctx.pool_ids, "paper")
    ks = sorted(set(recall_ks(len(ctx.pool_ids) - 1)) | {10})  # paper rule: every pool note but the query
    return evaluate_queries(EmbeddingScorer(vectors, encoder.name), queries, ctx.pool_ids, ks=ks)


def pool_recall10(encoder: Encoder, data_dir: str | Path, progress: bool = False) -> tuple[float, int, int]:
    """(Recall@10 in points, queries, pool size) of `encoder` under the paper rule on the data folder's test pool."""
    result = pool_result(encoder, data_dir, progress)
    return 100.0 * result["overall"]["recall@10"], int(result["overall"]["n_queries"]), int(result["pool_size"])


def compare_results(reference_label: str, reference: dict, candidate_label: str, candidate: dict,
                    max_drop: float = MAX_RECALL_DROP, bootstrap=None) -> RecallComparison:
    """Two `pool_result`s of the same queries compared: point figures and paired-bootstrap intervals (in points)."""
    from notellm.evaluation.bootstrap import BootstrapConfig, paired_difference
    from notellm.evaluation.metrics import per_query

    if reference.get("query_digest") != candidate.get("query_digest"):
        raise ValueError("the two encoders were scored on different queries; a paired comparison needs the same")
    if not reference["greater"]:
        raise ValueError("the test pool has no query (no test pair with both notes in it): nothing to compare")
    ks = list(reference["ks"])
    values = [per_query(np.asarray(r["greater"], dtype=np.int64), np.asarray(r["ties"], dtype=np.int64), ks)
              for r in (candidate, reference)]
    diff = paired_difference(*values, bootstrap or BootstrapConfig())
    return RecallComparison(
        reference_label, candidate_label,
        100.0 * reference["overall"]["recall@10"], 100.0 * candidate["overall"]["recall@10"],
        int(reference["overall"]["n_queries"]), int(reference["pool_size"]), max_drop,
        recall_avg_reference=100.0 * reference["overall"]["recall_avg"],
        recall_avg_candidate=100.0 * candidate["overall"]["recall_avg"],
        recall10_diff_ci=(100.0 * diff["recall@10"][1], 100.0 * diff["recall@10"][2]),
        recall_avg_diff_ci=(100.0 * diff["recall_avg"][1], 100.0 * diff["recall_avg"][2]))


def compare_recall(reference: Encoder, candidate: Encoder, data_dir: str | Path, max_drop: float = MAX_RECALL_DROP,
                   progress: bool = False) -> RecallComparison:
    """Both encoders scored on the data folder's test pool, the same queries; see `compare_results`."""
    return compare_results(encoder_label(reference), pool_result(reference, data_dir, progress),
                           encoder_label(candidate), pool_result(candidate, data_dir, progress), max_drop)


def encoder_label(encoder: Encoder) -> str:
    return f"{getattr(encoder, 'runtime', 'custom')} {getattr(encoder, 'precision', '')}".strip()
