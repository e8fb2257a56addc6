"""`NoteIndex`: the one contract every note index behind the service fulfils.

A `NoteIndex` holds, per note id, the note's metadata and its unit-norm embedding, and answers nearest-neighbour
queries by inner product (= cosine). Implementations: `LocalNoteIndex` (store.py) and `MilvusNoteIndex`
(milvus.py); `open_index` (backend.py) picks one. The HTTP app and its tests only ever see this Protocol. It
imports no implementation, so store.py, milvus.py and backend.py depend on it without an import cycle.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from notellm.data.schema import Note


class NoteIndex(Protocol):
    """Notes + embeddings with exact-or-ANN inner-product search. Writes are durable when they return."""

    name: str
    """Short backend name shown by /health ("faiss" or "milvus")."""
    dim: int
    """Embedding dimension."""

    def __len__(self) -> int: ...

    def get(self, note_id: str) -> Note | None:
        """The stored note, or None if the id is unknown."""
        ...

    def get_many(self, note_ids: list[str]) -> list[Note | None]:
        """Stored notes in the order asked (None for unknown ids), in one round trip."""
        ...

    def vectors(self, note_ids: list[str]) -> np.ndarray:
        """Embeddings of known notes, (n, dim) float32, in the order asked. KeyError for an unknown id."""
        ...

    def upsert(self, notes: list[Note], vectors: np.ndarray) -> None:
        """Add or replace notes (vectors (n, dim), unit-norm); searchable and durable once this returns."""
        ...

    def delete(self, note_id: str) -> bool:
        """Remove a note; False if it was not there."""
        ...

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k nearest notes to one query vector (dim,), best first, as (note_id, score)."""
        ...

    def search_titles(self, text: str, limit: int) -> list[Note]:
        """Notes whose title contains `text` (case-insensitive); any notes when `text` is empty."""
        ...

    def close(self) -> None:
        """Flush and release resources (compacts the local store)."""
        ...
