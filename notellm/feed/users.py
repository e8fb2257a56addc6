"""Held-out users for feed evaluation: a time split of each user's events into history → (feed) → later.

For every user, events are sorted by time and reduced to distinct notes (first engagement counts). The first
`history_frac` of them is the history the feed is built from; the rest are the notes the user engaged with later,
which a good feed should contain. Users with fewer than `min_notes` distinct embedded notes are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from notellm.data import schema as S
from notellm.retrieval.exact import top_k


@dataclass
class UserSplit:
    """One held-out user: row indices into the embedding matrix."""

    user_id: str
    history: np.ndarray  # (h,) int64, oldest first
    later: np.ndarray  # (l,) int64


def split_users(
    events_df: pd.DataFrame,
    row_of: dict[str, int],
    *,
    history_frac: float = 0.5,
    min_notes: int = 4,
    max_users: int | None = 500,
    seed: int = 0,
) -> list[UserSplit]:
    """Time-split every eligible user; a random (seeded) sample of at most `max_users` of them, sorted by id.

    Raises:
        ValueError: naming the missing column when `events_df` lacks user_id, note_id or timestamp.
    """
    for col in (S.USER_ID, S.NOTE_ID, S.TIMESTAMP):
        if col not in events_df.columns:
            raise ValueError(f"events_df has no {col!r} column (columns: {list(events_df.columns)})")
    ev = events_df[[S.USER_ID, S.NOTE_ID, S.TIMESTAMP]].copy()
    ev[S.NOTE_ID] = ev[S.NOTE_ID].astype(str)
    ev["row"] = ev[S.NOTE_ID].map(row_of)
    ev = ev.dropna(subset=["row"]).sort_values([S.USER_ID, S.TIMESTAMP, S.NOTE_ID], kind="stable")
    ev = ev.drop_duplicates([S.USER_ID, "row"], keep="first")
    users: list[UserSplit] = []
    for user, group in ev.groupby(S.USER_ID, sort=True):
        rows = group["row"].to_numpy(dtype=np.int64)
        if len(rows) < min_notes:
            continue
        h = min(max(1, int(len(rows) * history_frac)), len(rows) - 1)
        users.append(UserSplit(str(user), rows[:h], rows[h:]))
    if max_users is not None and len(users) > max_users:
        pick = np.random.default_rng(seed).choice(len(users), size=max_users, replace=False)
        users = [users[i] for i in sorted(pick)]
    return users


def candidates_for(
    users: list[UserSplit], unit: np.ndarray, n_candidates: int, recent: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest neighbours of each user's last `recent` history notes (score = max cosine), history excluded.

    Returns:
        rows (U, n) int64 candidate rows sorted by score, scores (U, n) float32.
    """
    n_notes = unit.shape[0]
    n = min(n_candidates, n_notes)
    rows = np.empty((len(users), n), dtype=np.int64)
    scores = np.empty((len(users), n), dtype=np.float32)
    for u, user in enumerate(users):
        sims = unit[user.history[-recent:]] @ unit.T  # (h, N_all)
        best = sims.max(axis=0)
        best[user.history] = -np.inf
        n_valid = n_notes - len(np.unique(user.history))
        top = top_k(best, n)
        rows[u], scores[u] = top, best[top]
        if n_valid < n:  # tiny pools: history rows were the only way to fill n; keep them excluded (-inf)
            scores[u, n_valid:] = -np.inf
    return rows, scores
