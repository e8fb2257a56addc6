"""Typed evaluation results: what the pipeline hands the report, built once per table from the raw rankings.

`evaluate_scorer` (harness.py) returns, per method and rule, the raw rank interval of every query (`greater`,
`ties`) with point metrics and breakdowns. `build_table` turns the raw results of every method of one table into
a `RetrievalTable`: each metric with its paired-bootstrap interval (`bootstrap.py`) and each method's difference to
the reference method with its interval and a verdict. `metrics.json` stores `table.to_dict()`; the report reads it
back with `RetrievalTable.from_dict` and renders, never computes.

The wording rule (`verdict`): "better" / "worse" only where the interval of the difference excludes zero,
"no detectable difference" otherwise; `comparison_sentence` writes the sentences from the numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from notellm.evaluation.bootstrap import BootstrapConfig, metric_intervals, paired_difference
from notellm.evaluation.metrics import per_query

Verdict = Literal["better", "worse", "no detectable difference"]
METRIC_LABELS = {"recall_avg": "Avg", "mrr": "MRR", "ndcg@10": "NDCG@10"}
# The reference for "better / worse" when the caller names none: the strongest trained baseline first.
DEFAULT_REFERENCES = ("SentenceBERT fine-tuned (MNRL)", "SentenceBERT (all-MiniLM-L6-v2)", "SentenceBERT")


MIN_QUERIES = 20  # below this a percentile bootstrap interval is too coarse to carry a verdict


def verdict(lo: float, hi: float, n_queries: int = MIN_QUERIES) -> Verdict:
    """The wording rule: the sign of the difference counts only when its whole interval is on one side of 0 (and
    there are at least `MIN_QUERIES` queries: one query's interval has width 0 whatever the truth)."""
    if n_queries < MIN_QUERIES:
        return "no detectable difference"
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "no detectable difference"


@dataclass(frozen=True)
class Estimate:
    """A metric's value on the queries and its bootstrap interval (all in [0, 1] for rates)."""

    value: float
    lo: float
    hi: float

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2.0


@dataclass(frozen=True)
class Difference:
    """method − reference on the same queries, with the paired-bootstrap interval of that difference."""

    value: float
    lo: float
    hi: float
    n_queries: int = MIN_QUERIES

    @property
    def verdict(self) -> Verdict:
        return verdict(self.lo, self.hi, self.n_queries)


@dataclass
class RuleResult:
    """One method under one candidate-pool rule: metrics with intervals, the comparison to the reference."""

    rule: str
    ks: list[int]
    pool_size: int
    n_candidates: int
    n_queries: int
    metrics: dict[str, Estimate]
    versus_reference: dict[str, Difference] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, dict[str, int | float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class EmbeddingHealth:
    """Is the embedding space usable? See `health.py` for the definitions."""

    mean_random_cosine: float
    effective_rank: float
    dim: int
    top1_score: float
    far_rank: int
    far_score: float
    notes: int

    @property
    def gap(self) -> float:
        return self.top1_score - self.far_score

    @property
    def collapsed(self) -> bool:
        return self.mean_random_cosine > COLLAPSE_COSINE


COLLAPSE_COSINE = 0.9


@dataclass
class RetrievalTable:
    """Every method of one evaluation setting (cold test pool, full corpus, warm notes) with intervals."""

    setting: str
    pool: str  # how the candidates are chosen, in words (each table says which rule)
    reference: str | None
    bootstrap: BootstrapConfig
    methods: dict[str, dict[str, RuleResult]]
    health: dict[str, EmbeddingHealth] = field(default_factory=dict)
    folds: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RetrievalTable:
        from pydantic import TypeAdapter

        return TypeAdapter(cls).validate_python(data)

    def rules(self) -> list[str]:
        return list(dict.fromkeys(rule for per_rule in self.methods.values() for rule in per_rule))


@dataclass
class GenerationRow:
    """One generator (a model's decoding, or a baseline) on the generation sample."""

    model: str
    decoding: str  # "free", "constrained <SCORINGS label>" (greedy, pmi λ=…, beam), or "baseline, ..."
    category: dict[str, int | float]  # acc, ill, n (generation.category_metrics)
    hashtags: dict[str, int | float]  # bleu4, rouge*, tag_precision, tag_recall, tag_ill, n
    diversity: dict  # distinct_per_note, modal_share, modal_list, n (generation_baselines.diversity)
    chosen: str = ""  # the tasks ("category", "hashtags") for which this constrained scoring won on validation
    intervals: dict[str, list[float]] = field(default_factory=dict)  # 95% [lo, hi] over notes: acc, tag P, tag R


@dataclass
class GenerationReport:
    """Generation on one sample of test notes: every model decoding and every baseline, one row each."""

    notes: int
    vocabulary: int
    tags_reachable: float
    rows: list[GenerationRow]
    choice: dict = field(default_factory=dict)  # constrained scoring chosen on validation (harness)


def query_digest(query_ids: list[str], truth_ids: list[str]) -> str:
    """A fingerprint of a query list: paired comparisons refuse results scored on different queries."""
    blob = "\n".join(f"{q}\t{t}" for q, t in zip(query_ids, truth_ids)).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def pool_folds(per_fold: list[dict]) -> dict:
    """One raw rule result from several folds' raw results: their queries concatenated (fold order kept)."""
    if len(per_fold) == 1:
        return per_fold[0]
    ks = [k for k in per_fold[0]["ks"] if all(k in r["ks"] for r in per_fold)]
    return {"ks": ks, "greater": [g for r in per_fold for g in r["greater"]],
            "ties": [t for r in per_fold for t in r["ties"]],
            "pool_size": int(np.mean([r["pool_size"] for r in per_fold])),
            "n_candidates": int(np.mean([r["n_candidates"] for r in per_fold])),
            "query_digest": query_digest([r["query_digest"] for r in per_fold], [""] * len(per_fold)),
            "breakdowns": {}}


def _values(raw: dict) -> dict[str, np.ndarray]:
    return per_query(np.asarray(raw["greater"], dtype=np.int64), np.asarray(raw["ties"], dtype=np.int64),
                     list(raw["ks"]))


def build_table(setting: str, pool: str, raw: dict[str, dict[str, dict]], cfg: BootstrapConfig | None = None,
                reference: str | None = None, health: dict[str, EmbeddingHealth] | None = None,
                folds: int = 1) -> RetrievalTable:
    """The typed table of raw results {method: {rule: raw}} (raw = `evaluate_queries`'s dict).

    `reference` defaults to the first of `DEFAULT_REFERENCES` present; with none present there are no comparisons.
    """
    cfg = cfg or BootstrapConfig()
    if reference is None:
        reference = next((r for r in DEFAULT_REFERENCES if r in raw), None)
    elif reference not in raw:
        raise ValueError(f"reference method {reference!r} was not evaluated; methods: {sorted(raw)}")
    ref_values = {rule: _values(r) for rule, r in raw.get(reference, {}).items() if len(r["greater"])}
    methods: dict[str, dict[str, RuleResult]] = {}
    for name, per_rule in raw.items():
        methods[name] = {}
        for rule, r in per_rule.items():
            if not len(r["greater"]):
                continue
            values = _values(r)
            estimates = {m: Estimate(*v) for m, v in metric_intervals(values, cfg).items()}
            versus = {}
            if name != reference and rule in ref_values:
                ref = raw[reference][rule]
                if ref.get("query_digest") != r.get("query_digest"):
                    raise ValueError(f"{name} and the reference {reference} were scored on different {rule}-rule "
                                     "queries; a paired comparison needs the same queries")
                versus = {m: Difference(*v, n_queries=len(r["greater"]))
                          for m, v in paired_difference(values, ref_values[rule], cfg).items()}
            methods[name][rule] = RuleResult(rule=rule, ks=list(r["ks"]), pool_size=int(r["pool_size"]),
                                             n_candidates=int(r["n_candidates"]), n_queries=len(r["greater"]),
                                             metrics=estimates, versus_reference=versus,
                                             breakdowns=r.get("breakdowns", {}))
    return RetrievalTable(setting=setting, pool=pool, reference=reference, bootstrap=cfg, methods=methods,
                          health=dict(health or {}), folds=folds)


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("recall@", "R@"))


def comparison_sentence(method: str, reference: str, metric: str, diff: Difference, rule: str,
                        level: float = 0.95) -> str:
    """One comparative sentence, worded by `verdict` from the numbers (points = percentage points)."""
    span = (f"{100 * diff.value:+.2f} points, {100 * level:.0f}% interval {100 * diff.lo:+.2f} to "
            f"{100 * diff.hi:+.2f}")
    if diff.n_queries < MIN_QUERIES:
        span += f"; {diff.n_queries} queries, too few for a verdict"
    if diff.verdict == "no detectable difference":
        return (f"{method}: no detectable difference from {reference} in {metric_label(metric)} ({rule} rule; "
                f"{span})")
    return f"{method}: {diff.verdict} than {reference} in {metric_label(metric)} ({rule} rule; {span})"


def comparison_sentences(table: RetrievalTable, metrics: tuple[str, ...] = ("recall_avg", "mrr")) -> list[str]:
    """Every method against the reference, for each rule and each of `metrics`."""
    if table.reference is None:
        return []
    out = []
    for name, per_rule in table.methods.items():
        for rule, res in per_rule.items():
            for metric in metrics:
                if metric in res.versus_reference:
                    out.append(comparison_sentence(name, table.reference, metric, res.versus_reference[metric],
                                                   rule, table.bootstrap.level))
    return out
