"""Embed a note pool (`encode_notes` with any `Encoder`), store it (`NoteVectors`), search it (`VectorIndex`)."""

from __future__ import annotations

from notellm.retrieval.encode import Encoder, NoteLLMEncoder, encode_notes, l2_normalize
from notellm.retrieval.index import IndexConfig, VectorIndex
from notellm.retrieval.vectors import NoteVectors

__all__ = ["Encoder", "IndexConfig", "NoteLLMEncoder", "NoteVectors", "VectorIndex", "encode_notes", "l2_normalize"]
