"""`open_index`: the factory that opens the note index behind the service (the contract is in protocol.py).

A `NoteIndex` holds, per note id, the note's metadata and its unit-norm embedding, and answers nearest-neighbour
queries by inner product (= cosine). Two implementations:

- `LocalNoteIndex` (store.py): in-process FAISS over a durable snapshot + write-ahead log on local disk. The default.
- `MilvusNoteIndex` (milvus.py): a Milvus collection (a cluster by URI, or embedded milvus-lite by file path), for
  when one machine is not enough; Milvus owns durability and replication there.

The HTTP app and its test suite only ever see the `NoteIndex` Protocol, so both backends pass the same tests.
Import graph (no cycle): protocol <- store <- milvus <- backend (implementations imported lazily); notes travel
as dicts through the data model's codec (`Note.to_dict` / `Note.from_dict`).
"""

from __future__ import annotations

from pathlib import Path

from notellm.serve.protocol import NoteIndex

__all__ = ["NoteIndex", "open_index"]


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
