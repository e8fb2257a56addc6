"""The vector layer: store embeddings (`NoteVectors`), normalise and rank them exactly (`l2_normalize`, `top_k`),
index them (`VectorIndex`: exact / HNSW / IVF behind one `search(queries, k)`), and embed a note pool with any
`Encoder` (`encode_notes`).

Names resolve lazily, so `from notellm.retrieval.exact import top_k` (rerank/, feed/) does not import faiss or tqdm.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "Encoder": "encode", "NoteLLMEncoder": "encode", "encode_notes": "encode",
    "IndexConfig": "index", "VectorIndex": "index",
    "NoteVectors": "vectors",
    "l2_normalize": "exact", "top_k": "exact",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'notellm.retrieval' has no attribute {name!r}")
    return getattr(importlib.import_module(f"notellm.retrieval.{_WHERE[name]}"), name)
