"""The I2I retrieval protocol of docs/method.md §5.2, under both candidate-pool rules, with breakdowns.

Two rules (the paper and the official code disagree, docs/method.md §7; we report both):
- `paper`: every test pair (a, b) with both notes in the pool is one query; a is the target, b the ground truth;
  candidates = every pool note except a. A note may be a query several times.
- `code` (`eval_recall.py`): pairs are read in file order and accepted only if neither note appeared in an earlier
  accepted pair (`notellm.data.store.dedup_pairs_code_rule`), so each note is used once; candidates = the pool minus
  *every* query note (the ground truth is never a query, so it is always a candidate).

A `Scorer` turns (query ids, candidate ids) into a dense score matrix; query rows are processed in chunks so the
memory is O(chunk × pool). Ranks are tie-aware (see `metrics.py`). Breakdowns bucket queries by an attribute of
the query note (warm/cold, short/long, category) or of the ground truth (exposure, as the paper's Table 3 does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from notellm.data.schema import NOTE_ID_A, NOTE_ID_B
from notellm.evaluation.metrics import ranks_from_scores, recall_ks, summarize
from notellm.evaluation.results import query_digest
from notellm.retrieval.vectors import NoteVectors

Rule = Literal["paper", "code"]
RULES: tuple[Rule, ...] = ("paper", "code")


class Scorer(Protocol):
    """Scores candidates for queries: higher = more related."""

    name: str

    def score(self, query_ids: list[str], candidate_ids: list[str]) -> np.ndarray:  # (nq, nc)
        ...


class EmbeddingScorer:
    """Inner product of unit-norm embeddings (cosine), the paper's score."""

    def __init__(self, vectors: NoteVectors, name: str) -> None:
        self.vectors, self.name = vectors, name
        self._candidates: tuple[list[str], np.ndarray] | None = None  # the pool matrix, reused across chunks

    def score(self, query_ids: list[str], candidate_ids: list[str]) -> np.ndarray:
        q = self.vectors.matrix[self.vectors.rows(query_ids)]  # (nq, d)
        if self._candidates is None or self._candidates[0] is not candidate_ids:
            self._candidates = (candidate_ids, self.vectors.matrix[self.vectors.rows(candidate_ids)])
        return q @ self._candidates[1].T  # (nq, nc)


@dataclass
class QuerySet:
    """The queries of one rule: target/ground-truth ids and, per query, a candidate-exclusion set."""

    rule: str
    query_ids: list[str]
    truth_ids: list[str]
    exclude_all: set[str] = field(default_factory=set)  # removed from every query's candidates (code rule)


def build_queries(pairs: pd.DataFrame, pool_ids: list[str], rule: Rule) -> QuerySet:
    """Queries of `rule` from test pairs whose two notes are both in the pool (self pairs dropped)."""
    pool = set(pool_ids)
    missing = [c for c in (NOTE_ID_A, NOTE_ID_B) if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs frame lacks column(s) {missing}; has {list(pairs.columns)}")
    df = pairs[[NOTE_ID_A, NOTE_ID_B]].astype(str)
    df = df[df[NOTE_ID_A].isin(pool) & df[NOTE_ID_B].isin(pool) & (df[NOTE_ID_A] != df[NOTE_ID_B])]
    if rule == "paper":
        return QuerySet("paper", df[NOTE_ID_A].tolist(), df[NOTE_ID_B].tolist())
    if rule == "code":
        from notellm.data.store import dedup_pairs_code_rule

        df = dedup_pairs_code_rule(df.reset_index(drop=True))
        queries = df[NOTE_ID_A].astype(str).tolist()
        return QuerySet("code", queries, df[NOTE_ID_B].astype(str).tolist(), exclude_all=set(queries))
    raise ValueError(f"unknown rule {rule!r}; use one of {RULES}")


def rank_queries(
    scorer: Scorer, queries: QuerySet, pool_ids: list[str], chunk: int = 512, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(greater, ties) for every query of `queries` against the pool under its rule."""
    pool_ids = [str(p) for p in pool_ids]
    col = {note_id: j for j, note_id in enumerate(pool_ids)}
    base_valid = np.array([p not in queries.exclude_all for p in pool_ids])  # (nc,)
    greater, ties = [], []
    starts = range(0, len(queries.query_ids), chunk)
    for start in tqdm(starts, desc=f"rank {scorer.name} ({queries.rule})", disable=not progress, unit="chunk"):
        q_ids = queries.query_ids[start : start + chunk]
        t_ids = queries.truth_ids[start : start + chunk]
        scores = np.asarray(scorer.score(q_ids, pool_ids), dtype=np.float64)  # (c, nc)
        valid = np.repeat(base_valid[None, :], len(q_ids), axis=0)  # (c, nc)
        q_cols = np.array([col[q] for q in q_ids])
        valid[np.arange(len(q_ids)), q_cols] = False  # never rank the target itself
        t_cols = np.array([col[t] for t in t_ids])
        valid[np.arange(len(q_ids)), t_cols] = True
        g, t = ranks_from_scores(scores, t_cols, valid)
        greater.append(g)
        ties.append(t)
    if not greater:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(greater), np.concatenate(ties)


def evaluate_queries(
    scorer: Scorer,
    queries: QuerySet,
    pool_ids: list[str],
    ks: list[int] | None = None,
    breakdowns: dict[str, tuple[str, dict[str, str]]] | None = None,
    progress: bool = False,
) -> dict:
    """Overall metrics plus per-bucket metrics.

    Args:
        breakdowns: name -> (side, {note_id: bucket}) where side is "query" or "truth": which note of each query
            decides its bucket. Queries whose note has no bucket are left out of that breakdown.

    Returns:
        {"overall": {metric: value}, "breakdowns": {name: {bucket: {metric: value}}}, "pool_size": int,
         "greater"/"ties": the rank interval of every query (the bootstrap's input), "query_digest": str, ...}
    """
    n_candidates = len(pool_ids) - (len(queries.exclude_all) if queries.exclude_all else 1)
    ks = ks or recall_ks(n_candidates)
    greater, ties = rank_queries(scorer, queries, pool_ids, progress=progress)
    out: dict = {
        "overall": summarize(greater, ties, ks),
        "pool_size": len(pool_ids),
        "n_candidates": n_candidates,
        "ks": ks,
        "breakdowns": {},
        # per query, for the paired bootstrap (results.build_table)
        "greater": greater.tolist(),
        "ties": ties.tolist(),
        "query_digest": query_digest(queries.query_ids, queries.truth_ids),
    }
    for name, (side, bucket_of) in (breakdowns or {}).items():
        ids = queries.query_ids if side == "query" else queries.truth_ids
        labels = np.array([bucket_of.get(i, "") for i in ids], dtype=object)
        out["breakdowns"][name] = {
            str(b): summarize(greater[labels == b], ties[labels == b], ks) for b in sorted(set(labels) - {""})
        }
    return out


def links_queries(links: pd.DataFrame, pool_ids: list[str]) -> QuerySet:
    """Explicit related links inside the pool, both directions, as paper-rule queries (links are undirected)."""
    pool = set(pool_ids)
    df = links[[NOTE_ID_A, NOTE_ID_B]].astype(str)
    df = df[df[NOTE_ID_A].isin(pool) & df[NOTE_ID_B].isin(pool) & (df[NOTE_ID_A] != df[NOTE_ID_B])]
    both = pd.concat([df, df.rename(columns={NOTE_ID_A: NOTE_ID_B, NOTE_ID_B: NOTE_ID_A})]).drop_duplicates()
    return QuerySet("links", both[NOTE_ID_A].tolist(), both[NOTE_ID_B].tolist())
