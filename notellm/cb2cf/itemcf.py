"""ItemCF positive pairs for CB2CF: item co-occurrence among users, top-k per item, above an exposure threshold.

The user × item matrix X is binary (a user engaged with a note at least once). Co-occurrence C = XᵀX (scipy
sparse). Similarity is `count` (C_ij) or `cosine` (C_ij / √(n_i n_j), n_i = users of item i). Only items engaged by
at least `min_users` users take part on either side: their CF statistics are reliable, which is the point of CB2CF
(learn content → CF similarity on head items, apply it to cold ones; docs/method.md §9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from notellm.data.store import cooccurrence, cosine, user_note_matrix


def itemcf_pairs(
    events_df: pd.DataFrame,
    row_of: dict[str, int],
    *,
    min_users: int = 3,
    top_k: int = 10,
    min_cooccurrence: int = 1,
    similarity: str = "cosine",
) -> pd.DataFrame:
    """Mine ItemCF pairs from events.

    Args:
        events_df: user_id, note_id columns (other columns ignored).
        row_of: note id -> row of the feature matrix; events on other notes are ignored.
        min_users: exposure threshold: both items need at least this many distinct users.
        top_k: most similar items kept per item (ties broken by row).
        min_cooccurrence: minimum shared users for a pair.
        similarity: "cosine" or "count".

    Returns:
        DataFrame with columns a, b (int rows), score (float), both directions present when both qualify.
    """
    if similarity not in ("cosine", "count"):
        raise ValueError(f"similarity must be 'cosine' or 'count', got {similarity!r}")
    empty = pd.DataFrame({"a": np.empty(0, np.int64), "b": np.empty(0, np.int64), "score": np.empty(0)})
    if not row_of:
        return empty
    x = user_note_matrix(events_df, row_of).tocsc()  # (U, items): the rows of row_of are its columns
    n_users = np.asarray(x.sum(axis=0)).ravel()  # (items,)
    head_rows = np.flatnonzero(n_users >= min_users)
    co, _ = cooccurrence(x[:, head_rows].tocsr())  # (H, H) shared users
    co.data[co.data < min_cooccurrence] = 0
    co.eliminate_zeros()
    if similarity == "cosine":
        co = cosine(co, n_users[head_rows])
    a_all, b_all, s_all = [], [], []
    for i in range(co.shape[0]):
        lo, hi = co.indptr[i], co.indptr[i + 1]
        if lo == hi:
            continue
        cols, vals = co.indices[lo:hi], co.data[lo:hi]
        order = np.lexsort((cols, -vals))[:top_k]
        a_all.append(np.full(len(order), head_rows[i]))
        b_all.append(head_rows[cols[order]])
        s_all.append(vals[order])
    if not a_all:
        return empty
    return pd.DataFrame(
        {
            "a": np.concatenate(a_all).astype(np.int64),
            "b": np.concatenate(b_all).astype(np.int64),
            "score": np.concatenate(s_all).astype(np.float64),
        }
    )
