"""`NoteEmbedder`: the one callable that embeds a batch of notes, for the local loop and for Spark workers alike.

It holds only the model folder and options, so it pickles small; the model is loaded on first use, once per
process (a Spark Python worker loads it once and reuses it for every batch it is given). Loading goes through
`notellm.inference.load.load_encoder`, the single place a saved model (a NoteLLM folder on PyTorch, or an ONNX
export on ONNX Runtime) becomes an `Encoder`. Output rows are L2-normalised float32, as `encode_notes` gives them.
Vectors travel as Parquet shards: `notellm.retrieval.vector_shards`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from notellm.data.schema import Note
from notellm.inference.load import load_encoder
from notellm.retrieval.encode import l2_normalize
from notellm.retrieval.vector_shards import notes_from_json


@dataclass
class NoteEmbedder:
    """Embeds batches of notes with a saved model; an `Encoder` (name, encode) and a batch callable."""

    model_dir: str
    batch_size: int = 32
    """Notes per forward pass."""
    runtime: str | None = None
    """torch or onnx (`notellm export` folder); None: what the folder is."""
    threads: int | None = None
    """CPU threads per process (None: PyTorch's setting)."""
    precision: str = "auto"
    """PyTorch runtime only: auto | bf16 | fp32 (notellm/precision.py)."""
    name: str = "NoteLLM"
    _encoder: Any = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_encoder": None}  # ship the recipe to workers, never the loaded model

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            self._encoder = load_encoder(self.model_dir, self.runtime, batch_size=self.batch_size,
                                         threads=self.threads, precision=self.precision, name=self.name)
        return self._encoder

    def encode(self, notes: list[Note]) -> np.ndarray:
        """(n, d) float32 unit rows."""
        if not notes:
            return np.zeros((0, 0), np.float32)
        return l2_normalize(np.asarray(self.encoder.encode(notes), dtype=np.float32))

    __call__ = encode

    def embed_json(self, rows: np.ndarray | list[str]) -> np.ndarray:
        """Embed notes given as JSON objects (the canonical note fields), the form Spark hands a worker."""
        return self.encode(notes_from_json(rows))
