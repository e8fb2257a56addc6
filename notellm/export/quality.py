"""Does a quantised encoder rank as well as the fp32 one? Recall@10 of both on a mined data folder's test pool.

The cosine check in onnx.py bounds the numeric error of int8; this is the check that matters to a recommender: the
paper-rule Recall@10 (evaluation/protocol.py) of the reference and the candidate encoder on the same test pool. A
drop of more than `max_drop` points is reported (`RecallComparison.ok` is False), not hidden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

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
        return (f"Recall@10 on the test pool ({self.pool_size} notes, {self.queries} queries): {self.reference} "
                f"{self.recall10_reference:.2f}, {self.candidate} {self.recall10_candidate:.2f} "
                f"({-self.drop:+.2f} points; {verdict} {self.max_drop:g} point of the reference)")


def pool_recall10(encoder: Encoder, data_dir: str | Path, progress: bool = False) -> tuple[float, int, int]:
    """(Recall@10 in points, queries, pool size) of `encoder` under the paper rule on the data folder's test pool."""
    from notellm.evaluation.harness import EvalContext
    from notellm.evaluation.protocol import EmbeddingScorer, build_queries, evaluate_queries
    from notellm.retrieval.encode import encode_notes

    ctx = EvalContext.from_data_dir(data_dir)
    vectors = encode_notes(encoder, ctx.pool_notes(), progress=progress)
    queries = build_queries(ctx.test_pairs, ctx.pool_ids, "paper")
    result = evaluate_queries(EmbeddingScorer(vectors, encoder.name), queries, ctx.pool_ids, ks=[10])
    return 100.0 * result["overall"]["recall@10"], int(result["overall"]["n_queries"]), len(ctx.pool_ids)


def compare_recall(reference: Encoder, candidate: Encoder, data_dir: str | Path, max_drop: float = MAX_RECALL_DROP,
                   progress: bool = False) -> RecallComparison:
    ref, queries, pool = pool_recall10(reference, data_dir, progress)
    cand, _, _ = pool_recall10(candidate, data_dir, progress)
    return RecallComparison(_label(reference), _label(candidate), ref, cand, queries, pool, max_drop)


def _label(encoder: Encoder) -> str:
    return f"{getattr(encoder, 'runtime', 'custom')} {getattr(encoder, 'precision', '')}".strip()
