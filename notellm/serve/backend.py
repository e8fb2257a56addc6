"""The one contract every note index behind the service fulfils, and the factory that opens one.

A `NoteIndex` holds, per note id, the note's metadata and its unit-norm embedding, and answers nearest-neighbour
queries by inner product (= cosine). Two implementations:

- `LocalNoteIndex` (store.py): in-process FAISS over a durable snapshot + write-ahead log on local disk. The default.
- `MilvusNoteIndex` (milvus.py): a Milvus collection (a cluster by URI, or embedded milvus-lite by file path), for
  when one machine is not enough; Milvus owns durability and replication there.

The HTTP app and its test suite only ever see this Protocol, so both backends pass the same tests.
"""

from __future__ import annotations

from pathlib import Path
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


def open_index(backend: str, index_path: str | Path | None, *, milvus_uri: str | None = None,
               milvus_collection: str = "notellm_notes", compact_every: int = 2000) -> NoteIndex:
    """Open the service's note index.

    Args:
        backend: "faiss" (local durable store at `index_path`) or "milvus".
        index_path: local index folder written by `notellm index build`. For Milvus it seeds an empty or missing
            collection (and may be None when the collection already holds the notes).
        milvus_uri: Milvus server URI (`http://host:19530`) or a milvus-lite file path (`./notes.db`).
        milvus_collection: collection name for Milvus.
        compact_every: local store compaction threshold (WAL records).
    """
    if backend == "faiss":
        if index_path is None:
            raise ValueError("--index is required with --backend faiss (build one with `notellm index build`)")
        from notellm.serve.store import LocalNoteIndex

        return LocalNoteIndex.open(index_path, compact_every=compact_every)
    if backend == "milvus":
        if not milvus_uri:
            raise ValueError("--milvus-uri is required with --backend milvus (e.g. http://host:19530 or ./notes.db)")
        from notellm.serve.milvus import MilvusNoteIndex

        return MilvusNoteIndex.open(milvus_uri, milvus_collection, seed_from=index_path)
    raise ValueError(f"unknown backend {backend!r}; choose faiss or milvus")


URL = "url"  # the one extra field the service keeps: a link to the note's source (attribution, e.g. Stack Exchange)


def note_url(note: Note) -> str:
    value = note.extra.get(URL) if note.extra else None
    return value if isinstance(value, str) else ""


def note_to_dict(note: Note) -> dict:
    """A note as plain JSON-able fields (the WAL and API share this form)."""
    return {"note_id": note.note_id, "title": note.title, "content": note.content,
            "hashtags": list(note.hashtags), "category": note.category, URL: note_url(note)}


def note_from_dict(data: dict) -> Note:
    url = str(data.get(URL) or "")
    return Note(note_id=str(data["note_id"]), title=str(data.get("title", "")), content=str(data.get("content", "")),
                hashtags=tuple(str(t) for t in data.get("hashtags", ())), category=str(data.get("category", "")),
                extra={URL: url} if url else {})
