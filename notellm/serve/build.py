"""Build a servable index folder from a data folder: embed every note (or take precomputed vectors), write the
first snapshot (serve/store.py layout) with the vector index `IndexConfig` asks for.

    notellm index build --model out/model --data data/stackexchange --out out/index [--kind hnsw --set hnsw_m=16]
    notellm index build --model out/model --data data/stackexchange --vectors out/shards --out out/index
"""

from __future__ import annotations

from pathlib import Path

from notellm.data.schema import Note
from notellm.retrieval.encode import Encoder, encode_notes
from notellm.retrieval.index import IndexConfig
from notellm.retrieval.vector_shards import read_vectors
from notellm.serve.store import LocalNoteIndex

CHUNK = 256  # notes per progress step (the encoder batches inside each chunk)


def _check_ids(notes: list[Note], what: str) -> None:
    if not notes:
        raise ValueError(f"{what}: no notes to index")
    seen: set[str] = set()
    for note in notes:
        if note.note_id in seen:
            raise ValueError(f"{what}: note id {note.note_id!r} appears more than once")
        seen.add(note.note_id)


def build_index(encoder: Encoder, notes: list[Note], out: str | Path, *, overwrite: bool = False,
                info: dict | None = None, progress: bool = True, index: IndexConfig | None = None) -> Path:
    """Embed `notes` with `encoder` and write a fresh index folder at `out`."""
    _check_ids(notes, "build_index")
    info = {**(info or {}), "runtime": getattr(encoder, "runtime", "custom"),
            "precision": getattr(encoder, "precision", "unknown")}
    vectors = encode_notes(encoder, notes, chunk_size=CHUNK, progress=progress, desc="embedding notes")  # (N, d)
    return LocalNoteIndex.create(out, notes, vectors.matrix, info=info, overwrite=overwrite, index=index)


def index_from_vectors(notes: list[Note], vectors_path: str | Path, out: str | Path, *, overwrite: bool = False,
                       info: dict | None = None, index: IndexConfig | None = None) -> Path:
    """An index folder from precomputed vectors (`read_vectors`: .npz or Parquet shards); every note needs one.

    Raises:
        ValueError: a note has no vector in `vectors_path`.
    """
    _check_ids(notes, "index_from_vectors")
    vectors = read_vectors(vectors_path)
    known = set(vectors.ids)
    missing = [n.note_id for n in notes if n.note_id not in known]
    if missing:
        raise ValueError(f"{vectors_path}: {len(missing)} notes have no vector, e.g. {missing[0]!r}; "
                         "embed the same data folder")
    matrix = vectors.subset([n.note_id for n in notes]).matrix
    return LocalNoteIndex.create(out, notes, matrix, info=info, overwrite=overwrite, index=index)
