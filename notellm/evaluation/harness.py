"""The evaluation harness: the evaluation context of a mined data folder and the runs every pipeline composes.

`EvalContext.from_data_dir(dir)` loads notes, events, pairs and links once and fixes:
- the test pool = the notes the split put in `test` (`note_splits.parquet`), i.e. notes never seen in training
  (the paper's pool is also disjoint from training notes, docs/method.md §1);
- the test pairs (queries), the explicit links inside the pool, the breakdown buckets, and the training events
  (events on train-split notes, for ItemCF).
`evaluate_scorer(ctx, scorer)` then runs the paper rule, the code rule and the links check for one method and
returns the raw per-query ranks; `results.build_table` turns the raw results of all methods into the typed table
with bootstrap intervals. Two candidate pools: `pool="test"` (the test notes only, as the paper) and
`pool="full"` (every note, training notes included: the production I2I setting; queries are the same test pairs).
If mining held out warm pairs (data/warm.py), `ctx.warm` holds that second evaluation (pool = every note with
behaviour before t0, queries = new co-occurrences after t0, history events for ItemCF) and `evaluate_warm` runs it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from notellm.data import schema as S
from notellm.evaluation.bootstrap import BootstrapConfig, ratio_intervals
from notellm.evaluation.buckets import standard_breakdowns
from notellm.evaluation.generation import (
    category_metrics,
    hashtag_metrics,
    hashtag_per_note,
    per_note_scores,
    tag_metrics,
)
from notellm.evaluation.generation_baselines import diversity, knn_vote, most_frequent
from notellm.evaluation.protocol import Scorer, build_queries, evaluate_queries, links_queries
from notellm.evaluation.results import GenerationReport, GenerationRow
from notellm.retrieval.vectors import NoteVectors

# Constrained decoders compared on validation, cheapest first (a tie keeps the earlier): label -> generate kwargs.
# "pmi λ": greedy on log p(y | note) − λ·log p(y | empty note) (model/calibration.py), against the degenerate
# note-free prior of a briefly trained model (#11).
SCORINGS: dict[str, dict] = {"greedy": {"scoring": "greedy"},
                             "pmi λ=0.5": {"scoring": "pmi", "prior_weight": 0.5},
                             "pmi λ=1": {"scoring": "pmi", "prior_weight": 1.0},
                             "beam": {"scoring": "beam"}}

Pool = Literal["test", "full"]
POOL_RULES = {"test": "candidates = the test notes (notes never seen in training)",
              "full": "candidates = every note, training notes included (the production I2I setting)"}


@dataclass
class WarmEval:
    """The warm-note evaluation of a time-split log: new co-occurrences after t0 among notes active before it."""

    t0: str
    pool_ids: list[str]  # notes with at least one event before t0
    pairs: pd.DataFrame  # held-out future pairs (queries)
    history_events: pd.DataFrame  # events before t0: all a behaviour baseline may learn from

    @classmethod
    def load(cls, data_dir: Path, events: pd.DataFrame | None, note_ids: set[str]) -> WarmEval | None:
        from notellm.data.store import read_manifest

        path = data_dir / S.WARM_PAIRS_FILE
        t0 = read_manifest(data_dir).get("mining", {}).get("warm_holdout", {}).get("t0")
        if events is None or t0 is None or not path.is_file():
            return None
        history = events[pd.to_datetime(events[S.TIMESTAMP], utc=True) < pd.Timestamp(t0)]
        pool = sorted(set(history[S.NOTE_ID].astype(str)) & note_ids)
        return cls(t0=t0, pool_ids=pool, pairs=pd.read_parquet(path), history_events=history)


@dataclass
class EvalContext:
    data_dir: Path
    notes: pd.DataFrame  # canonical notes frame
    notes_by_id: dict  # note_id -> schema.Note
    events: pd.DataFrame | None
    train_pairs: pd.DataFrame
    test_pairs: pd.DataFrame
    links: pd.DataFrame | None
    pool_ids: list[str]
    train_ids: list[str]
    breakdowns: dict
    val_ids: list[str] = field(default_factory=list)
    warm: WarmEval | None = None

    @classmethod
    def from_data_dir(cls, data_dir: str | Path) -> EvalContext:
        from notellm.data.store import frame_to_notes, load_events, load_links, load_notes, load_pairs

        data_dir = Path(data_dir)
        notes = load_notes(data_dir)
        notes[S.NOTE_ID] = notes[S.NOTE_ID].astype(str)
        splits_path = data_dir / S.NOTE_SPLITS_FILE
        if not splits_path.is_file():
            raise FileNotFoundError(f"{splits_path} not found: mine and split first (`notellm mine {data_dir}`)")
        splits = pd.read_parquet(splits_path)
        splits[S.NOTE_ID] = splits[S.NOTE_ID].astype(str)
        pool_ids = sorted(splits.loc[splits[S.SPLIT] == "test", S.NOTE_ID])
        train_ids = sorted(splits.loc[splits[S.SPLIT] == "train", S.NOTE_ID])
        val_ids = sorted(splits.loc[splits[S.SPLIT] == "val", S.NOTE_ID])
        if not pool_ids:
            raise ValueError(f"{splits_path}: no note is in the test split; raise the test fraction")
        try:
            events = load_events(data_dir)
        except FileNotFoundError:
            events = None
        train_pairs, test_pairs = load_pairs(data_dir, "train"), load_pairs(data_dir, "test")
        warm = WarmEval.load(data_dir, events, set(notes[S.NOTE_ID]))
        return cls(
            data_dir=data_dir,
            notes=notes,
            notes_by_id={n.note_id: n for n in frame_to_notes(notes)},
            events=events,
            train_pairs=train_pairs,
            test_pairs=test_pairs,
            links=load_links(data_dir),
            pool_ids=pool_ids,
            train_ids=train_ids,
            val_ids=val_ids,
            breakdowns=standard_breakdowns(notes, pool_ids, events, train_pairs),
            warm=warm,
        )

    def pool_notes(self) -> list:
        return [self.notes_by_id[i] for i in self.pool_ids]

    @property
    def all_ids(self) -> list[str]:
        return sorted(self.notes_by_id)

    def candidate_ids(self, pool: Pool) -> list[str]:
        if pool not in POOL_RULES:
            raise ValueError(f"unknown pool {pool!r}; use one of {sorted(POOL_RULES)}")
        return self.pool_ids if pool == "test" else self.all_ids

    def candidate_notes(self, pool: Pool) -> list:
        return [self.notes_by_id[i] for i in self.candidate_ids(pool)]

    def warm_pool_notes(self) -> list:
        return [self.notes_by_id[i] for i in self.warm.pool_ids] if self.warm else []

    def train_events(self) -> pd.DataFrame | None:
        """Events on train-split notes only: what a behaviour baseline may learn from."""
        if self.events is None:
            return None
        return self.events[self.events[S.NOTE_ID].astype(str).isin(set(self.train_ids))]

    def links_in_pool(self) -> int:
        if self.links is None:
            return 0
        return len(links_queries(self.links, self.pool_ids).query_ids) // 2

    def category_set(self) -> list[str]:
        return sorted(set(self.notes[S.CATEGORY].astype(str)) - {""})

    def hashtag_vocabulary(self) -> list[str]:
        """Every hashtag of a training note: what a platform knows before it sees the test notes."""
        return sorted({tag for i in self.train_ids for tag in self.notes_by_id[i].hashtags if tag.strip()})


def train_note_pairs(ctx: EvalContext) -> list[tuple]:
    """The training pairs as (query note, related note), for fine-tuning a baseline on the same supervision."""
    return [(ctx.notes_by_id[str(a)], ctx.notes_by_id[str(b)])
            for a, b in zip(ctx.train_pairs[S.NOTE_ID_A], ctx.train_pairs[S.NOTE_ID_B])]


def evaluate_scorer(ctx: EvalContext, scorer: Scorer, progress: bool = True, pool: Pool = "test") -> dict:
    """{"paper": ..., "code": ..., "links": ...} raw results of `protocol.evaluate_queries` for one method.

    `pool="full"` ranks the same test pairs against every note (the scorer must cover them all); breakdowns are
    kept to the test pool, where their buckets are defined.
    """
    candidates = ctx.candidate_ids(pool)
    breakdowns = ctx.breakdowns if pool == "test" else None
    out = {}
    for rule in ("paper", "code"):
        queries = build_queries(ctx.test_pairs, ctx.pool_ids, rule)
        out[rule] = evaluate_queries(scorer, queries, candidates, breakdowns=breakdowns, progress=progress)
    if ctx.links is not None:
        queries = links_queries(ctx.links, ctx.pool_ids)
        if queries.query_ids:
            out["links"] = evaluate_queries(scorer, queries, candidates, progress=progress)
    return out


def evaluate_warm(ctx: EvalContext, scorer: Scorer, progress: bool = True) -> dict:
    """{"paper": ..., "code": ...} of one method on the warm-note holdout (`ctx.warm` must be set)."""
    if ctx.warm is None:
        raise ValueError(f"{ctx.data_dir} has no warm holdout: mine with a warm quantile (`notellm mine "
                         "--warm-quantile 0.6`)")
    return {rule: evaluate_queries(scorer, build_queries(ctx.warm.pairs, ctx.warm.pool_ids, rule), ctx.warm.pool_ids,
                                   progress=progress) for rule in ("paper", "code")}


def warm_evaluation(ctx: EvalContext, scorers: list[Scorer], progress: bool = True) -> dict:
    """The warm-note table: ItemCF on the history events, BM25 on the warm pool, then `scorers` (whose vectors must
    cover `ctx.warm.pool_ids`); {"t0", "pool_size", "pairs", "retrieval": {name: {"paper", "code"}}}."""
    from notellm.evaluation.itemcf import ItemCFScorer
    from notellm.evaluation.lexical import BM25Scorer

    if ctx.warm is None:
        raise ValueError(f"{ctx.data_dir} has no warm holdout")
    warm = ctx.warm
    baselines = [ItemCFScorer(warm.history_events, name="ItemCF (events before t0)"),
                 BM25Scorer(ctx.notes, warm.pool_ids)]
    return {"t0": warm.t0, "pool_size": len(warm.pool_ids), "pairs": len(warm.pairs),
            "retrieval": {s.name: evaluate_warm(ctx, s, progress) for s in baselines + list(scorers)}}


def generation_sample(ctx: EvalContext, n: int, first: list[str] | None = None) -> list[str]:
    """Up to n pool note ids for generation eval: `first` (the worked examples) then a seeded sample."""
    first = [i for i in (first or []) if i in set(ctx.pool_ids)]
    rest = [i for i in ctx.pool_ids if i not in set(first)]
    rng = np.random.default_rng(0)
    rest = [rest[i] for i in rng.permutation(len(rest))]
    return (first + rest)[:n]


def _scores(cat_pred: list[str], tag_pred: list[list[str]], notes: list, categories: list[str],
            vocabulary: list[str]) -> tuple[dict, dict, dict, dict]:
    """Category and hashtag metrics, diversity, and 95% bootstrap intervals over notes of every per-note figure:
    {"acc": [lo, hi], "ill", "tag_precision", "tag_recall", "tag_ill", "bleu4", "rouge1", "rouge2", "rougeL"}
    (the same resamples for all: one note is one unit). Diversity is a property of the whole set: no interval."""
    truth_cat, truth_tags = [n.category for n in notes], [list(n.hashtags) for n in notes]
    per = per_note_scores(cat_pred, truth_cat, tag_pred, truth_tags, categories, vocabulary)
    text = hashtag_per_note(tag_pred, truth_tags)
    ones = np.ones(len(notes))
    numerators = {"acc": per["category_hit"], "ill": per["category_ill"], "tag_precision": per["tag_hits"],
                  "tag_recall": per["tag_hits"], "tag_ill": per["tags_unknown"],
                  **{k: text[k] for k in ("bleu4", "rouge1", "rouge2", "rougeL")}}
    denominators = {"acc": ones, "ill": ones, "tag_precision": per["tags_generated"], "tag_recall": per["tags_true"],
                    "tag_ill": per["tags_listed"], **dict.fromkeys(("bleu4", "rouge1", "rouge2", "rougeL"),
                                                                   text["has_reference"])}
    intervals = ratio_intervals(numerators, denominators, BootstrapConfig()) if notes else {}
    return (category_metrics(cat_pred, truth_cat, categories), hashtag_metrics(tag_pred, truth_tags, vocabulary),
            diversity(tag_pred), {k: list(v) for k, v in intervals.items()})


def _tag_f1(tags: list[list[str]], notes: list) -> float:
    m = tag_metrics(tags, [list(n.hashtags) for n in notes])
    p, r = m["tag_precision"], m["tag_recall"]
    return 0.0 if not (p + r) or p != p or r != r else 2 * p * r / (p + r)


def choose_constrained_scoring(model, ctx: EvalContext, val_ids: list[str], progress: bool = False) -> dict:
    """The constrained decoder (a `SCORINGS` label: greedy, prior-calibrated λ, or length-normalised beam),
    chosen per task on validation notes.

    Category by accuracy, hashtags by exact-tag F1; a tie keeps the earlier (cheaper) label. Returns
    {"category": label, "hashtags": label, "validation_notes": n, "scores": {task: {label: value}}}.
    """
    notes = [ctx.notes_by_id[i] for i in val_ids]
    categories, vocabulary = ctx.category_set(), ctx.hashtag_vocabulary()
    scores: dict[str, dict[str, float]] = {"category": {}, "hashtags": {}}
    for label, how in SCORINGS.items():
        cats = model.generate_category(notes, constrained=True, categories=categories, progress=progress, **how)
        scores["category"][label] = category_metrics(cats, [n.category for n in notes], categories)["acc"]
        if vocabulary:
            tags = model.generate_hashtags(notes, k=5, constrained=True, vocabulary=vocabulary, progress=progress,
                                           **how)
            scores["hashtags"][label] = _tag_f1(tags, notes)
    order = list(SCORINGS)
    choice = {task: max(order, key=lambda s, by=by: (by.get(s, 0.0), -order.index(s))) for task, by in scores.items()}
    return {**choice, "validation_notes": len(notes), "scores": scores}


def validation_sample(ctx: EvalContext, n: int) -> list[str]:
    """Up to n validation-split note ids (seeded), for choices made before looking at test notes."""
    rng = np.random.default_rng(1)
    return [ctx.val_ids[i] for i in rng.permutation(len(ctx.val_ids))][:n]


def decode_generation(model, ctx: EvalContext, note_ids: list[str], progress: bool = True,
                      constrained: bool = True) -> dict[str, dict[str, tuple[str, list[str]]]]:
    """What a NoteLLM generates for each note: {note_id: {decoding: (category, hashtags)}}, decodings "free" and
    (unless `constrained` is False) "constrained <label>" for every `SCORINGS` decoder.

    A note's outputs do not depend on the notes decoded beside it (left padding, attention mask; batching can
    change only floating-point rounding), so notes decoded earlier, such as the quickstart's one-note timing probe,
    merge into a larger sample (`evaluate_generation(decoded=...)`) instead of being decoded again."""
    notes = [ctx.notes_by_id[i] for i in note_ids]
    if not notes:
        return {}
    categories, vocabulary = ctx.category_set(), ctx.hashtag_vocabulary()
    decoded = {"free": (model.generate_category(notes, constrained=False, progress=progress),
                        model.generate_hashtags(notes, k=5, progress=progress))}
    for label, how in SCORINGS.items() if constrained else ():
        cats = model.generate_category(notes, constrained=True, categories=categories, progress=progress, **how)
        tags = (model.generate_hashtags(notes, k=5, constrained=True, vocabulary=vocabulary, progress=progress,
                                        **how) if vocabulary else [[] for _ in notes])
        decoded[f"constrained {label}"] = (cats, tags)
    return {note_id: {decoding: (cats[row], tags[row]) for decoding, (cats, tags) in decoded.items()}
            for row, note_id in enumerate(note_ids)}


def evaluate_generation(model, ctx: EvalContext, note_ids: list[str], progress: bool = True,
                        val_ids: list[str] | None = None, name: str = "NoteLLM", constrained: bool = True,
                        decoded: dict[str, dict[str, tuple[str, list[str]]]] | None = None) -> dict:
    """Category and hashtag metrics of a NoteLLM on `note_ids`: free decoding and (unless `constrained` is False)
    constrained decoding by every `SCORINGS` decoder; the constrained decoder used downstream is chosen on
    `val_ids`. `decoded`: notes already decoded by this model (`decode_generation`, same `constrained`), reused
    instead of decoded again.

    Constrained hashtags use the training notes' tags (`hashtag_vocabulary`) as the closed set; `tags_reachable`
    is the share of the test notes' own tags inside it (the best tag recall constrained decoding can reach).
    Returns {"rows": [GenerationRow as dict], "choice": ..., "outputs": {note_id: {...}}, ...}.
    """
    notes = [ctx.notes_by_id[i] for i in note_ids]
    categories, vocabulary = ctx.category_set(), ctx.hashtag_vocabulary()
    choice = (choose_constrained_scoring(model, ctx, val_ids, progress=False) if val_ids and constrained
              else {"category": "greedy", "hashtags": "greedy", "validation_notes": 0, "scores": {}})
    decodings = ["free", *(f"constrained {label}" for label in SCORINGS if constrained)]
    wanted = set(note_ids)
    reused = {i: out for i, out in (decoded or {}).items() if i in wanted}
    for note_id, out in reused.items():
        if sorted(out) != sorted(decodings):
            raise ValueError(f"decoded outputs of note {note_id!r} hold {sorted(out)}, not the decodings "
                             f"{decodings} this evaluation scores (decode with the same `constrained`)")
    per_note = reused | decode_generation(model, ctx, [i for i in note_ids if i not in reused], progress,
                                          constrained)
    by_decoding = {d: ([per_note[i][d][0] for i in note_ids], [per_note[i][d][1] for i in note_ids])
                   for d in decodings}
    rows = []
    for decoding, (cats, tags) in by_decoding.items():
        cat_m, tag_m, div, ci = _scores(cats, tags, notes, categories, vocabulary)
        chosen = " and ".join(t for t in ("category", "hashtags") if decoding == f"constrained {choice[t]}")
        rows.append(asdict(GenerationRow(model=name, decoding=decoding, category=cat_m, hashtags=tag_m,
                                         diversity=div, chosen=chosen, intervals=ci)))
    known = set(vocabulary)
    reachable = [t in known for n in notes for t in n.hashtags]
    best = by_decoding.get(f"constrained {choice['category']}", ([None] * len(notes), None))[0]
    best_tags = by_decoding.get(f"constrained {choice['hashtags']}", (None, [None] * len(notes)))[1]
    free_cats, free_tags = by_decoding["free"]
    return {
        "rows": rows, "choice": choice, "vocabulary": len(vocabulary), "notes": len(notes),
        "tags_reachable": float(np.mean(reachable)) if reachable else float("nan"),
        "outputs": {i: {"category_free": f, "category_constrained": c, "hashtags": t, "hashtags_constrained": tc}
                    for i, f, c, t, tc in zip(note_ids, free_cats, best, free_tags, best_tags)},
        "reused": len(reused),
    }


def generation_baselines(ctx: EvalContext, note_ids: list[str], vectors: dict[str, NoteVectors | Path],
                         neighbours: int = 10, k: int = 5) -> list[dict]:
    """GenerationRow dicts of the trivial baselines on `note_ids`: the training set's most frequent category and
    tags, and kNN voting from the nearest training notes under each embedding in `vectors` (which must cover the
    training notes and `note_ids`)."""
    notes = [ctx.notes_by_id[i] for i in note_ids]
    categories, vocabulary = ctx.category_set(), ctx.hashtag_vocabulary()
    train = [ctx.notes_by_id[i] for i in ctx.train_ids]
    train_tags, train_cats = [list(n.hashtags) for n in train], [[n.category] for n in train]
    top_cat, top_tags = (most_frequent(train_cats, 1) or [""])[0], most_frequent(train_tags, k)
    predicted = {("most frequent (training notes)", "baseline"): ([top_cat] * len(notes), [top_tags] * len(notes))}
    for label, vecs in vectors.items():
        vecs = vecs if isinstance(vecs, NoteVectors) else NoteVectors.load(vecs)
        q = vecs.matrix[vecs.rows(note_ids)]
        t = vecs.matrix[vecs.rows(ctx.train_ids)]
        cats = [c[0] if c else "" for c in knn_vote(q, t, train_cats, 1, neighbours)]
        predicted[(f"kNN vote ({label})", f"baseline, {neighbours} neighbours")] = (
            cats, knn_vote(q, t, train_tags, k, neighbours))
    rows = []
    for (name, decoding), (cats, tags) in predicted.items():
        cat_m, tag_m, div, ci = _scores(cats, tags, notes, categories, vocabulary)
        rows.append(asdict(GenerationRow(model=name, decoding=decoding, category=cat_m, hashtags=tag_m,
                                         diversity=div, intervals=ci)))
    return rows


# --- composed runs: what the pipelines call (their results are JSON-able, for the stage cache) --------------------
EVAL_VERSION = 2  # bump when a raw result's shape changes, so cached evaluation stages re-run


def embed_and_evaluate(ctx: EvalContext, encoder_factory, vectors_path: Path, progress: bool) -> dict:
    """Embed the test pool with one encoder, save the vectors, and return {"retrieval": raw, "health": ...}."""
    from notellm.evaluation.health import embedding_health
    from notellm.evaluation.protocol import EmbeddingScorer
    from notellm.retrieval.encode import encode_notes

    encoder = encoder_factory()
    vectors = encode_notes(encoder, ctx.pool_notes(), progress=progress, desc=f"embed pool ({encoder.name})")
    vectors.save(vectors_path)
    return {"retrieval": evaluate_scorer(ctx, EmbeddingScorer(vectors, encoder.name), progress=False),
            "health": asdict(embedding_health(vectors.matrix))}


def embed_all(ctx: EvalContext, encoder_factory, vectors_path: Path, progress: bool) -> dict:
    """Embed every note with one encoder (for the full-corpus pool and kNN baselines); {"path": saved file}."""
    from notellm.retrieval.encode import encode_notes

    encoder = encoder_factory()
    vectors = encode_notes(encoder, [ctx.notes_by_id[i] for i in ctx.all_ids], progress=progress,
                           desc=f"embed all notes ({encoder.name})")
    return {"path": str(vectors.save(vectors_path))}


def full_corpus_evaluation(ctx: EvalContext, vectors: dict[str, Path], progress: bool = False) -> dict:
    """Raw full-corpus results of BM25, ItemCF (training events) and every embedding in `vectors` (all notes)."""
    from notellm.evaluation.itemcf import ItemCFScorer
    from notellm.evaluation.lexical import BM25Scorer
    from notellm.evaluation.protocol import EmbeddingScorer

    scorers: list = [EmbeddingScorer(NoteVectors.load(path), name) for name, path in vectors.items()]
    scorers.append(BM25Scorer(ctx.notes, ctx.all_ids))
    if ctx.events is not None:
        scorers.append(ItemCFScorer(ctx.train_events(), name="ItemCF (train events)"))
    return {s.name: evaluate_scorer(ctx, s, progress=progress, pool="full") for s in scorers}


def validation_size(gen_notes: int) -> int:
    """Validation notes for the constrained-scoring choice: a quarter of the test sample, 2 to 25."""
    return 0 if gen_notes <= 0 else int(min(25, max(2, gen_notes // 4)))


def retrieval_table(setting: str, pool: Pool | Literal["warm"], raw: dict[str, dict], health: dict | None = None,
                    reference: str | None = None, cfg=None, folds: int = 1):
    """The typed `RetrievalTable` of raw results (see `results.build_table`), with the pool rule in words."""
    from notellm.evaluation.results import EmbeddingHealth, build_table

    words = POOL_RULES.get(pool, "candidates = every note with behaviour before t0")
    return build_table(setting, words, raw, cfg=cfg, reference=reference,
                       health={k: EmbeddingHealth(**v) for k, v in (health or {}).items()}, folds=folds)


def generation_report(generation: dict[str, dict], baselines: list[dict]) -> GenerationReport | None:
    """The typed `GenerationReport` of per-model `evaluate_generation` results and `generation_baselines` rows."""
    if not generation and not baselines:
        return None
    first = next(iter(generation.values()), {})
    rows = [GenerationRow(**r) for g in generation.values() for r in g["rows"]]
    rows += [GenerationRow(**r) for r in baselines]
    return GenerationReport(notes=first.get("notes", rows[0].category.get("n", 0) if rows else 0),
                            vocabulary=first.get("vocabulary", 0), tags_reachable=first.get("tags_reachable", 0.0),
                            rows=rows, choice=first.get("choice", {}))
