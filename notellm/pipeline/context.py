"""The evaluation context of a mined data folder, and the helpers every evaluation run shares.

`EvalContext.from_data_dir(dir)` loads notes, events, pairs and links once and fixes:
- the test pool = the notes the split put in `test` (`note_splits.parquet`), i.e. notes never seen in training
  (the paper's pool is also disjoint from training notes, docs/method.md §1);
- the test pairs (queries), the explicit links inside the pool, the breakdown buckets, and the training events
  (events on train-split notes, for ItemCF).
`evaluate_scorer(ctx, scorer)` then runs the paper rule, the code rule and the links check for one method.
If mining held out warm pairs (data/warm.py), `ctx.warm` holds that second evaluation (pool = every note with
behaviour before t0, queries = new co-occurrences after t0, history events for ItemCF) and `evaluate_warm` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from notellm.data import schema as S
from notellm.evaluation.buckets import standard_breakdowns
from notellm.evaluation.generation import category_metrics, hashtag_metrics
from notellm.evaluation.protocol import Scorer, build_queries, evaluate_queries, links_queries


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
            breakdowns=standard_breakdowns(notes, pool_ids, events, train_pairs),
            warm=warm,
        )

    def pool_notes(self) -> list:
        return [self.notes_by_id[i] for i in self.pool_ids]

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


def evaluate_scorer(ctx: EvalContext, scorer: Scorer, progress: bool = True) -> dict:
    """{"paper": ..., "code": ..., "links": ...} results of `protocol.evaluate_queries` for one method."""
    out = {}
    for rule in ("paper", "code"):
        queries = build_queries(ctx.test_pairs, ctx.pool_ids, rule)
        out[rule] = evaluate_queries(scorer, queries, ctx.pool_ids, breakdowns=ctx.breakdowns, progress=progress)
    if ctx.links is not None:
        queries = links_queries(ctx.links, ctx.pool_ids)
        if queries.query_ids:
            out["links"] = evaluate_queries(scorer, queries, ctx.pool_ids, progress=progress)
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


def evaluate_generation(model, ctx: EvalContext, note_ids: list[str], progress: bool = True) -> dict:
    """Category and hashtag metrics of a NoteLLM on `note_ids`, free and constrained decoding, plus outputs.

    Constrained hashtags use the training notes' tags (`hashtag_vocabulary`) as the closed set; `tags_reachable`
    is the share of the test notes' own tags inside it (the best tag recall constrained decoding can reach).
    """
    notes = [ctx.notes_by_id[i] for i in note_ids]
    categories, vocabulary = ctx.category_set(), ctx.hashtag_vocabulary()
    free = model.generate_category(notes, constrained=False, progress=progress)
    constrained = model.generate_category(notes, constrained=True, categories=categories, progress=progress)
    tags = model.generate_hashtags(notes, k=5, progress=progress)
    tags_c = (model.generate_hashtags(notes, k=5, constrained=True, vocabulary=vocabulary, progress=progress)
              if vocabulary else [[] for _ in notes])
    truth_cat, truth_tags = [n.category for n in notes], [list(n.hashtags) for n in notes]
    known = set(vocabulary)
    reachable = [t in known for tags_ in truth_tags for t in tags_]
    return {
        "category_free": category_metrics(free, truth_cat, categories),
        "category_constrained": category_metrics(constrained, truth_cat, categories),
        "hashtags": hashtag_metrics(tags, truth_tags, vocabulary),
        "hashtags_constrained": {**hashtag_metrics(tags_c, truth_tags, vocabulary),
                                 "vocabulary": len(vocabulary),
                                 "tags_reachable": float(np.mean(reachable)) if reachable else float("nan")},
        "outputs": {i: {"category_free": f, "category_constrained": c, "hashtags": t, "hashtags_constrained": tc}
                    for i, f, c, t, tc in zip(note_ids, free, constrained, tags, tags_c)},
    }
