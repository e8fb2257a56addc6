"""Vectors on disk as Parquet shards (note_id, embedding: list<float>), the layout the local `notellm embed` and the
Spark embedder both write: `write_vector_shard` / `read_vectors` (which also reads a NoteVectors .npz), read by
`notellm index build --vectors` (serve/build.py `index_from_vectors`); and the JSON form in which notes cross to
Spark workers (`NOTE_JSON_FIELDS`, `notes_from_json`). Pure data: no model here (`inference/note_embedder.py` embeds).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from notellm.data import schema as S
from notellm.data.schema import Note
from notellm.retrieval.vectors import NoteVectors

EMBEDDING = "embedding"
NOTE_JSON_FIELDS = (S.NOTE_ID, S.TITLE, S.CONTENT, S.HASHTAGS, S.CATEGORY)


def notes_from_json(rows: np.ndarray | list[str]) -> list[Note]:
    """JSON note records -> `Note`s, the way `load_notes` + `frame_to_notes` read a data folder."""
    from notellm.data.store import frame_to_notes

    frame = pd.DataFrame([json.loads(r) for r in rows], columns=list(NOTE_JSON_FIELDS))
    for column in (S.TITLE, S.CONTENT, S.CATEGORY):
        frame[column] = frame[column].fillna("")
    frame[S.HASHTAGS] = [list(S.tag_tuple(v)) for v in frame[S.HASHTAGS].to_numpy(dtype=object)]
    return frame_to_notes(frame)


def write_vector_shard(vectors: NoteVectors, path: str | Path) -> Path:
    """One Parquet shard (note_id, embedding) — the layout Spark writes, so one reader serves both."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dim = vectors.dim
    flat = pa.array(vectors.matrix.reshape(-1), type=pa.float32())
    table = pa.table({S.NOTE_ID: pa.array(vectors.ids, pa.string()),
                      EMBEDDING: pa.ListArray.from_arrays(pa.array(np.arange(0, len(vectors) * dim + 1, dim,
                                                                               dtype=np.int32)), flat)})
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def read_vectors(path: str | Path) -> NoteVectors:
    """NoteVectors from a .npz file, a Parquet shard or a folder of shards (note_id, embedding).

    Raises:
        FileNotFoundError / ValueError: missing path, no shards, missing columns, ragged or empty embeddings.
    """
    path = Path(path)
    if path.suffix == ".npz":
        return NoteVectors.load(path)
    if not path.exists():
        raise FileNotFoundError(f"vectors not found: {path}")
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{path}: no .parquet vector shards in this folder")
    ids: list[str] = []
    parts: list[np.ndarray] = []
    for file in files:
        table = pq.read_table(file)
        missing = [c for c in (S.NOTE_ID, EMBEDDING) if c not in table.column_names]
        if missing:
            raise ValueError(f"{file}: not a vector shard, no column(s) {missing} (columns: {table.column_names})")
        column = table.column(EMBEDDING).combine_chunks()
        if len(column) == 0:
            continue
        if column.null_count:
            raise ValueError(f"{file}: {column.null_count} rows have no embedding")
        lengths = np.unique(np.diff(column.offsets.to_numpy()))
        if len(lengths) != 1 or lengths[0] == 0:
            raise ValueError(f"{file}: embeddings have sizes {lengths.tolist()}; all rows need the same size")
        parts.append(column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, lengths[0]))
        ids.extend(table.column(S.NOTE_ID).to_pylist())
    if not parts:
        raise ValueError(f"{path}: the vector shards hold no rows")
    dims = {p.shape[1] for p in parts}
    if len(dims) != 1:
        raise ValueError(f"{path}: shards mix embedding sizes {sorted(dims)}")
    return NoteVectors(ids, np.concatenate(parts))
