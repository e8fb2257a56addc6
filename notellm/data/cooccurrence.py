"""Item-item co-occurrence of a behaviour log (ItemCF): who engaged with which note, as sparse matrices.

X is the binary user × note matrix (a user engaged with a note at least once); C = XᵀX counts the users two notes
share (diagonal removed); cosine(i, j) = C_ij / √(n_i n_j), n_i = users of note i. Used by the ItemCF baseline
(evaluation) and by CB2CF's positive pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from notellm.data.schema import NOTE_ID, USER_ID


def user_note_matrix(events: pd.DataFrame, note_index: dict[str, int]) -> sparse.csr_matrix:
    """Binary (users, max column + 1) matrix; events on notes missing from `note_index` are ignored.

    Raises:
        ValueError: when `events` lacks the user_id or note_id column.
    """
    for column in (USER_ID, NOTE_ID):
        if column not in events.columns:
            raise ValueError(f"events have no {column!r} column (columns: {list(events.columns)})")
    ev = events[[USER_ID, NOTE_ID]].astype(str)
    cols = ev[NOTE_ID].map(note_index)
    ev = ev.assign(col=cols).dropna(subset=["col"]).drop_duplicates([USER_ID, "col"])
    _, user_rows = np.unique(ev[USER_ID].to_numpy(), return_inverse=True)
    n_users = int(user_rows.max()) + 1 if len(user_rows) else 0
    data = np.ones(len(ev), dtype=np.float32)
    n_cols = max(note_index.values()) + 1 if note_index else 0
    return sparse.csr_matrix((data, (user_rows, ev["col"].to_numpy(np.int64))), shape=(n_users, n_cols))


def cooccurrence(x: sparse.csr_matrix) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Shared-user counts C = XᵀX without the diagonal, and users per note n (the diagonal)."""
    co = (x.T @ x).tocsr()  # (I, I)
    n_users = np.asarray(co.diagonal(), dtype=np.float64)  # (I,)
    co.setdiag(0)
    co.eliminate_zeros()
    return co, n_users


def cosine(co: sparse.csr_matrix, n_users: np.ndarray) -> sparse.csr_matrix:
    """Cosine similarity C_ij / √(n_i n_j) of a co-occurrence matrix (same sparsity)."""
    inv = sparse.diags(1.0 / np.sqrt(np.maximum(n_users, 1e-12)))
    return (inv @ co @ inv).tocsr()
