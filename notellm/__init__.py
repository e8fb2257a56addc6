"""notellm: the NoteLLM note-recommendation stack (pair mining, LLM embeddings, evaluation, SSD, CB2CF, serving)."""

from __future__ import annotations

__version__ = "0.1.0"
