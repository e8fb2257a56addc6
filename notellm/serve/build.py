"""Build a servable index folder from a data folder and a model: embed every note, write the first snapshot.

    notellm index build --model out/model --data data/stackexchange --out out/index
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from notellm.data.schema import Note
from notellm.serve.embedder import Embedder
from notellm.serve.store import LocalNoteIndex

CHUNK = 256  # notes per progress step (the model batches inside each chunk)


def embed_all(model: Embedder, notes: list[Note], batch_size: int = 32) -> np.ndarray:
    """Embeddings of `notes` (N, d) float32 with a progress bar."""
    parts = []
    for start in tqdm(range(0, len(notes), CHUNK), desc="embedding notes", unit="chunk"):
        parts.append(np.asarray(model.embed(notes[start : start + CHUNK], batch_size=batch_size), dtype=np.float32))
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def build_index(model: Embedder, notes: list[Note], out: str | Path, *, batch_size: int = 32,
                overwrite: bool = False, info: dict | None = None) -> Path:
    """Embed `notes` with `model` and write a fresh index folder at `out` (see store.py for the layout)."""
    if not notes:
        raise ValueError("build_index: no notes to index")
    ids = [n.note_id for n in notes]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"build_index: note id {dup!r} appears more than once")
    vectors = embed_all(model, notes, batch_size)  # (N, d)
    return LocalNoteIndex.create(out, notes, vectors, info=info, overwrite=overwrite)
