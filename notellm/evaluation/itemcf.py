"""ItemCF baseline: item-item cosine similarity of the user x note co-occurrence matrix built from training events.

s(i, j) = |U_i ∩ U_j| / sqrt(|U_i| |U_j|) over the sets of users who engaged with each note (each user counted once
per note), a sparse product `X^T X` of the binary user x note matrix (scipy). Only *training events* are used: the
caller passes events on notes outside the evaluation split (otherwise ItemCF would read the very co-occurrences the
test pairs were mined from). Rule for cold notes: a note with no training events (always the case for test notes on a
note-disjoint split) scores 0 against everything, so its candidates tie and its expected rank is uniform: ItemCF is
then exactly the random baseline, and the report says so via the warm/cold counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from notellm.data.schema import NOTE_ID
from notellm.data.store import cooccurrence, cosine, user_note_matrix


class ItemCFScorer:
    """`Scorer` from a training event log (columns user_id, note_id)."""

    def __init__(self, events: pd.DataFrame, name: str = "ItemCF") -> None:
        self.name = name
        notes = np.unique(events[NOTE_ID].astype(str).to_numpy())
        self._col = {n: j for j, n in enumerate(notes.tolist())}
        co, n_users = cooccurrence(user_note_matrix(events, self._col))
        self.sim = cosine(co, n_users)  # (I, I), zero diagonal

    def is_warm(self, note_id: str) -> bool:
        return str(note_id) in self._col

    def score(self, query_ids: list[str], candidate_ids: list[str]) -> np.ndarray:
        out = np.zeros((len(query_ids), len(candidate_ids)), dtype=np.float32)  # (nq, nc)
        cand_cols = np.array([self._col.get(str(c), -1) for c in candidate_ids])
        known = cand_cols >= 0
        for i, q in enumerate(query_ids):
            row = self._col.get(str(q))
            if row is None or not known.any():
                continue  # cold query: every candidate ties at 0
            dense = self.sim.getrow(row).toarray().ravel()  # (I,)
            out[i, known] = dense[cand_cols[known]]
        return out
