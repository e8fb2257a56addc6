"""Build a servable index folder from a data folder and a model: embed every note, write the first snapshot.

    notellm index build --model out/model --data data/stackexchange --out out/index
"""

from __future__ import annotations

from pathlib import Path

from notellm.data.schema import Note
from notellm.retrieval.encode import Encoder, encode_notes
from notellm.serve.store import LocalNoteIndex

CHUNK = 256  # notes per progress step (the encoder batches inside each chunk)


def build_index(encoder: Encoder, notes: list[Note], out: str | Path, *, overwrite: bool = False,
                info: dict | None = None, progress: bool = True) -> Path:
    """Embed `notes` with `encoder` and write a fresh index folder at `out` (see store.py for the layout)."""
    if not notes:
        raise ValueError("build_index: no notes to index")
    ids = [n.note_id for n in notes]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"build_index: note id {dup!r} appears more than once")
    info = {**(info or {}), "runtime": getattr(encoder, "runtime", "custom"),
            "precision": getattr(encoder, "precision", "unknown")}
    vectors = encode_notes(encoder, notes, chunk_size=CHUNK, progress=progress, desc="embedding notes")  # (N, d)
    return LocalNoteIndex.create(out, notes, vectors.matrix, info=info, overwrite=overwrite)
