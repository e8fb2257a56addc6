"""Offline feed evaluation: no re-ranking vs MMR, DPP and SSD at matched relevance, on held-out users.

Protocol (see docs/diversity.md):
1. Time-split each eligible user's distinct engaged notes into history → later (`feed.users.split_users`).
2. Candidates: the `n_candidates` nearest notes (cosine) to the user's last `recent_history` history notes,
   scored by the max cosine; history notes excluded.
3. Every method re-ranks the candidates into a feed of `feed_size` items, for each value on its parameter grid
   (MMR λ, DPP θ, SSD γ, SSD* θ): one point of its relevance–diversity frontier.
4. Per feed: relevance kept (score ratio, NDCG vs the un-reranked order), ILAD / ILMD (whole feed and windowed),
   distinct categories and topics (first hashtags), and hits = how many of the user's later-engaged notes the
   feed holds.
   Diversity is always measured in the `embeddings` space, even when re-ranking uses `diversify_with`
   (e.g. CB2CF vectors), so methods and embedding choices compare on one ruler.
5. "Matched relevance": each method's frontier (its grid points sorted by relevance) is linearly interpolated to
   the same relevance level (`match_relevance` of NDCG vs the un-reranked order, by default), so all methods are
   compared at equal relevance cost; the interpolated parameter value is reported too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from notellm.config import to_dict
from notellm.data import schema as S
from notellm.feed.users import candidates_for, split_users
from notellm.rerank.api import METHODS, rerank_batch
from notellm.rerank.metrics import batch_diversity
from notellm.retrieval.exact import l2_normalize

PARAM_OF = {"none": None, "mmr": "lam", "dpp": "theta", "dpp_window": "theta", "ssd": "gamma", "ssd_star": "theta"}


def _default_grids() -> dict[str, list[float]]:
    return {
        # Dense where the trade-off happens on z-scored relevance (small relevance weights).
        "mmr": [1.0, 0.5, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05, 0.03, 0.0],
        "dpp": [0.9, 0.6, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05, 0.0],
        "ssd": [0.0, 1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0],
        "ssd_star": [1.0, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05, 0.03, 0.0],
    }


@dataclass
class FeedConfig:
    """Feed-evaluation settings."""

    feed_size: int = 20
    """Items per feed (T)."""
    n_candidates: int = 200
    """Neighbours retrieved per user before re-ranking (N)."""
    recent_history: int = 5
    """Candidates are neighbours of this many most recent history notes."""
    history_frac: float = 0.5
    """Share of each user's distinct notes (oldest first) used as history; the rest is 'later'."""
    min_notes: int = 4
    """Users with fewer distinct embedded notes are skipped."""
    max_users: int = 500
    """Held-out users sampled (seeded); 0 = all eligible users."""
    window: int | None = 5
    """Re-ranker window (positions, counting the new item) for MMR, SSD, SSD* and dpp_window; None = whole feed."""
    metric_window: int = 5
    """Window of the windowed ILAD / ILMD."""
    gamma: float = 1.0
    """SSD* diversity scale γ (its grid varies θ)."""
    match_on: str = "ndcg"
    """Relevance ruler for matching: ndcg (graded by candidate score, sensitive) or score_ratio."""
    match_relevance: float = 0.9
    """Each method's frontier is linearly interpolated to this value of `match_on` (the matched comparison)."""
    grids: dict[str, list[float]] = field(default_factory=_default_grids)
    """Method -> parameter values (mmr: λ, dpp / dpp_window: θ, ssd: γ, ssd_star: θ); 'none' is always added."""
    batch_users: int = 64
    """Users re-ranked per batched call (bounds memory: batch × N × d floats)."""
    seed: int = 0
    """Seed for the user sample."""

    def __post_init__(self) -> None:
        if self.feed_size < 2:
            raise ValueError(f"feed_size must be >= 2, got {self.feed_size}")
        if self.n_candidates < self.feed_size:
            raise ValueError(f"n_candidates ({self.n_candidates}) must be >= feed_size ({self.feed_size})")
        if not 0.0 < self.history_frac < 1.0:
            raise ValueError(f"history_frac must be in (0, 1), got {self.history_frac}")
        if self.min_notes < 2:
            raise ValueError(f"min_notes must be >= 2 (one history + one later note), got {self.min_notes}")
        if self.metric_window < 2:
            raise ValueError(f"metric_window must be >= 2, got {self.metric_window}")
        if self.match_on not in ("ndcg", "score_ratio"):
            raise ValueError(f"match_on must be 'ndcg' or 'score_ratio', got {self.match_on!r}")
        if not 0.0 < self.match_relevance <= 1.0:
            raise ValueError(f"match_relevance must be in (0, 1], got {self.match_relevance}")
        for method, grid in self.grids.items():
            if method not in PARAM_OF or method == "none":
                raise ValueError(f"grids: unknown method {method!r}; choose from {sorted(set(PARAM_OF) - {'none'})}")
            if not grid:
                raise ValueError(f"grids.{method} is empty")


@dataclass
class FeedEvalResult:
    """Frontier points (one row per method × parameter value) and the matched-relevance comparison."""

    frontier: pd.DataFrame
    """Columns: method, param, value, feed_size, score_ratio, ndcg, ilad, ilmd, ilad@wW, ilmd@wW, categories,
    topics (distinct first hashtags), later_hits, later_hit_rate (means over users)."""
    matched: pd.DataFrame
    """One row per method interpolated to matched relevance (plus 'none'); methods whose grid does not reach the
    level are absent."""
    n_users: int
    pool_later_hits: float
    """Mean later-engaged notes among all candidates: the ceiling any re-ranking of this pool can reach."""
    config: FeedConfig
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "n_users": self.n_users,
            "pool_later_hits": self.pool_later_hits,
            "config": to_dict(self.config),
            "matched": self.matched.to_dict(orient="records"),
            "frontier": self.frontier.to_dict(orient="records"),
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write feed_eval.json and frontier.csv into `out_dir`; returns the JSON path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.frontier.to_csv(out / "frontier.csv", index=False)
        path = out / "feed_eval.json"
        path.write_text(json.dumps(self.to_dict(), indent=2, default=float), encoding="utf-8")
        return path


def _runs(cfg: FeedConfig) -> list[tuple[str, str | None, float | None, dict[str, Any]]]:
    runs: list[tuple[str, str | None, float | None, dict[str, Any]]] = [("none", None, None, {})]
    for method, grid in cfg.grids.items():
        name = PARAM_OF[method]
        for value in grid:
            params: dict[str, Any] = {name: float(value)}
            if method in ("mmr", "ssd", "ssd_star"):
                params["window"] = cfg.window
            elif method == "dpp_window":
                params["window"] = cfg.window or cfg.feed_size
            if method == "ssd_star":
                params["gamma"] = cfg.gamma
            runs.append((method, name, float(value), params))
    return runs


def evaluate_feeds(
    notes_df: pd.DataFrame,
    events_df: pd.DataFrame,
    embeddings: np.ndarray,
    note_ids: list[str],
    cfg: FeedConfig | None = None,
    *,
    diversify_with: np.ndarray | None = None,
    label: str = "",
    progress: bool = True,
) -> FeedEvalResult:
    """Build feeds for held-out users and compare re-rankers over their parameter grids.

    Args:
        notes_df: notes with note_id, category and (optionally) hashtags.
        events_df: events with user_id, note_id, timestamp.
        embeddings: (N, d) note embeddings (retrieval + the diversity ruler), rows aligned with `note_ids`.
        note_ids: N note ids.
        cfg: settings (defaults if None).
        diversify_with: optional (N, d') embeddings the re-rankers diversify with (e.g. CB2CF).
        label: a name for this run (e.g. the embedding model).
        progress: show a progress bar.

    Raises:
        ValueError: on misaligned inputs or when no user has enough events.
    """
    cfg = cfg or FeedConfig()
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(note_ids):
        raise ValueError(f"embeddings shape {emb.shape} does not match {len(note_ids)} note_ids")
    div = emb if diversify_with is None else np.asarray(diversify_with, dtype=np.float32)
    if div.shape[0] != len(note_ids):
        raise ValueError(f"diversify_with has {div.shape[0]} rows, expected {len(note_ids)}")
    for col in (S.NOTE_ID, S.CATEGORY):
        if col not in notes_df.columns:
            raise ValueError(f"notes_df has no {col!r} column")
    unit = l2_normalize(emb)
    row_of = {str(n): i for i, n in enumerate(note_ids)}
    meta = notes_df.assign(**{S.NOTE_ID: notes_df[S.NOTE_ID].astype(str)}).set_index(S.NOTE_ID)
    ids = [str(n) for n in note_ids]
    category = meta[S.CATEGORY].reindex(ids).fillna("").astype(str).to_numpy()
    tags = meta[S.HASHTAGS].reindex(ids) if S.HASHTAGS in meta.columns else pd.Series([()] * len(ids))
    first_tag = np.array([(list(t)[0] if t is not None and len(t) else "") for t in tags], dtype=object)

    users = split_users(
        events_df,
        row_of,
        history_frac=cfg.history_frac,
        min_notes=cfg.min_notes,
        max_users=cfg.max_users or None,
        seed=cfg.seed,
    )
    if not users:
        raise ValueError(f"no user has >= {cfg.min_notes} distinct embedded notes; lower min_notes")
    cand_rows, cand_scores = candidates_for(users, unit, cfg.n_candidates, cfg.recent_history)  # (U, n)
    later_sets = [set(u.later.tolist()) for u in users]
    pool_hits = float(np.mean([len(later_sets[i] & set(cand_rows[i].tolist())) for i in range(len(users))]))

    records = []
    runs = _runs(cfg)
    bar = tqdm(total=len(runs), desc=f"feeds {label}".strip(), unit=" setting", disable=not progress)
    for method, name, value, params in runs:
        picks = np.empty((len(users), cfg.feed_size), dtype=np.int64)
        for start in range(0, len(users), cfg.batch_users):
            sl = slice(start, start + cfg.batch_users)
            picks[sl] = rerank_batch(cand_scores[sl], div[cand_rows[sl]], cfg.feed_size, method, **params)
        records.append(
            _feed_metrics(
                method, name, value, picks, cand_rows, cand_scores, unit, category, first_tag, later_sets, cfg
            )
        )
        bar.update(1)
    bar.close()
    frontier = pd.DataFrame.from_records(records)
    matched = _matched(frontier, cfg.match_on, cfg.match_relevance)
    return FeedEvalResult(frontier, matched, len(users), pool_hits, cfg, label)


def _feed_metrics(method, name, value, picks, cand_rows, cand_scores, unit, category, first_tag, later_sets, cfg):
    n_users, size = picks.shape
    if (picks < 0).any():  # DPP stopped early (ε rule) for some user: score only the filled part
        size = int((picks >= 0).sum(axis=1).min())
        picks = picks[:, :size]
    rows = np.take_along_axis(cand_rows, picks, axis=1)  # (U, T) note rows
    got = np.take_along_axis(cand_scores, picks, axis=1).astype(np.float64)
    best = np.sort(cand_scores, axis=1)[:, ::-1][:, :size].astype(np.float64)
    discount = 1.0 / np.log2(np.arange(2, size + 2))
    low = cand_scores.min(axis=1, keepdims=True).astype(np.float64)
    ndcg = ((got - low) * discount).sum(1) / np.maximum(((best - low) * discount).sum(1), 1e-12)
    div = batch_diversity(unit[rows], window=cfg.metric_window)
    hits = np.array([len(later_sets[u] & set(rows[u].tolist())) for u in range(n_users)])
    rec = {
        "method": method,
        "param": name or "",
        "value": np.nan if value is None else value,
        "feed_size": size,
        "score_ratio": float((got.sum(1) / best.sum(1)).mean()),
        "ndcg": float(ndcg.mean()),
        **{key: float(np.nanmean(val)) for key, val in div.items()},
        "categories": float(np.mean([len(set(category[r])) for r in rows])),
        "topics": float(np.mean([len(set(first_tag[r]) - {""}) for r in rows])),
        "later_hits": float(hits.mean()),
        "later_hit_rate": float((hits > 0).mean()),
    }
    return rec


def _matched(frontier: pd.DataFrame, on: str, target: float) -> pd.DataFrame:
    """Interpolate every numeric column of each method's frontier to `on == target` (between the two bracketing
    grid points, ordered by `on`)."""
    rows = [frontier[frontier.method == "none"].iloc[0].to_dict()]
    numeric = [c for c in frontier.columns if c not in ("method", "param") and frontier[c].dtype.kind in "fi"]
    for method in [m for m in METHODS if m != "none" and m in set(frontier.method)]:
        part = frontier[frontier.method == method].sort_values(on).reset_index(drop=True)
        x = part[on].to_numpy()
        if not x.min() <= target <= x.max():
            continue
        hi = int(np.searchsorted(x, target))  # first point with relevance >= target
        lo = max(hi - 1, 0)
        w = 0.0 if x[hi] == x[lo] else (target - x[lo]) / (x[hi] - x[lo])
        row = {"method": method, "param": part.loc[hi, "param"]}
        for c in numeric:
            row[c] = float((1 - w) * part.loc[lo, c] + w * part.loc[hi, c])
        rows.append(row)
    return pd.DataFrame(rows)
