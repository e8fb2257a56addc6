"""Cold-start evaluation of CB2CF: can content-only inference find a new note's co-engaged notes?

Protocol:
1. Cold notes: a seeded random `cold_frac` of the notes that have at least one co-engaged note (another note
   engaged by one of the same users). ALL their events are removed from training: ItemCF pairs and CB2CF see only
   warm behaviour, so a cold note is truly new to the model.
2. Truth for a cold note c: the notes co-engaged with c in the full event log (shared users), c excluded.
3. Both embeddings — the content features CB2CF was trained from, and CB2CF's output — rank every other note by
   cosine to c. Recall@K = |truth ∩ top-K| / |truth|, averaged over cold notes; AUC = P(a truth note outranks a
   non-truth note), ties counted half. (ItemCF itself cannot score a cold note at all: it has no behaviour.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from notellm.cb2cf.model import CB2CFConfig
from notellm.cb2cf.train import TrainLog, fit_from_events
from notellm.data import schema as S
from notellm.retrieval.exact import l2_normalize, top_k


@dataclass
class ColdStartResult:
    """Metrics per embedding ('content', 'cb2cf') and the training summary."""

    metrics: dict[str, dict[str, float]]
    n_cold: int
    n_train_events: int
    n_pairs: int
    ks: tuple[int, ...]
    train_seconds: float
    epoch_loss: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def co_engaged(events_df: pd.DataFrame, row_of: dict[str, int]) -> dict[int, set[int]]:
    """Row -> rows sharing at least one user with it (itself excluded)."""
    ev = events_df[[S.USER_ID, S.NOTE_ID]].astype(str)
    ev = ev.assign(row=ev[S.NOTE_ID].map(row_of)).dropna(subset=["row"]).drop_duplicates([S.USER_ID, "row"])
    out: dict[int, set[int]] = {}
    for _, group in ev.groupby(S.USER_ID):
        rows = group["row"].astype(np.int64).tolist()
        if len(rows) < 2:
            continue
        for r in rows:
            out.setdefault(r, set()).update(rows)
    for r in out:
        out[r].discard(r)
    return {r: s for r, s in out.items() if s}


def retrieval_metrics(unit: np.ndarray, queries: list[int], truth: list[set[int]], ks: tuple[int, ...]) -> dict:
    """Recall@K and AUC of cosine ranking (all other notes are candidates).  unit (N, d) L2-normalised rows."""
    recalls = {k: [] for k in ks}
    aucs = []
    for q, true in zip(queries, truth):
        sims = unit @ unit[q]  # (N,)
        sims[q] = -np.inf
        order = top_k(sims, max(ks))
        is_true = np.zeros(len(sims), dtype=bool)
        is_true[list(true)] = True
        for k in ks:
            recalls[k].append(is_true[order[:k]].sum() / len(true))
        mask = np.ones(len(sims), dtype=bool)
        mask[q] = False
        ranks = rankdata(sims[mask])  # average ranks: ties count half
        pos = is_true[mask]
        n_pos, n_neg = pos.sum(), (~pos).sum()
        if n_pos and n_neg:
            aucs.append((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    out = {f"recall@{k}": float(np.mean(v)) for k, v in recalls.items()}
    out["auc"] = float(np.mean(aucs)) if aucs else float("nan")
    return out


def evaluate_cold_start(
    text: np.ndarray,
    note_ids: list[str],
    events_df: pd.DataFrame,
    cfg: CB2CFConfig | None = None,
    *,
    cold_frac: float = 0.1,
    ks: tuple[int, ...] = (10, 50, 100),
    image: np.ndarray | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ColdStartResult:
    """Hold out a set of notes' behaviour, train CB2CF on the rest, compare cold-note retrieval (see module doc).

    Raises:
        ValueError: when `cold_frac` is outside (0, 1) or no note has co-engaged notes.
    """
    if not 0.0 < cold_frac < 1.0:
        raise ValueError(f"cold_frac must be in (0, 1), got {cold_frac}")
    text = np.asarray(text, dtype=np.float32)
    if text.shape[0] != len(note_ids):
        raise ValueError(f"text features have {text.shape[0]} rows for {len(note_ids)} note_ids")
    row_of = {str(n): i for i, n in enumerate(note_ids)}
    truth_all = co_engaged(events_df, row_of)
    if not truth_all:
        raise ValueError("no note shares a user with another note: nothing to evaluate")
    eligible = np.array(sorted(truth_all))
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(eligible, size=max(1, int(round(len(eligible) * cold_frac))), replace=False))
    cold_ids = {str(note_ids[r]) for r in cold}
    train_events = events_df[~events_df[S.NOTE_ID].astype(str).isin(cold_ids)]
    model, log = fit_from_events(text, note_ids, train_events, cfg, image=image, progress=progress)
    learned = model.embed(text, image)
    content = l2_normalize(text)
    queries = cold.tolist()
    truth = [truth_all[r] for r in queries]
    metrics = {
        "content": retrieval_metrics(content, queries, truth, ks),
        "cb2cf": retrieval_metrics(learned, queries, truth, ks),
    }
    return _result(metrics, len(cold), len(train_events), log, ks)


def _result(metrics: dict, n_cold: int, n_events: int, log: TrainLog, ks: tuple[int, ...]) -> ColdStartResult:
    return ColdStartResult(metrics, n_cold, n_events, log.n_pairs, tuple(ks), log.seconds, log.epoch_loss)
