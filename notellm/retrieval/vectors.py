"""`NoteVectors`: note ids plus their embedding matrix, the one on-disk format for embeddings.

Saved as a single `.npz` holding `ids` (unicode array) and `vectors` (float32, (N, d)). `np.load` is called with
`allow_pickle=False`, so a vectors file can never execute code; ids are stored as a fixed-width unicode array for
that reason (no object arrays).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class NoteVectors:
    """Embeddings of a note pool.

    Attributes:
        ids: note ids, length N, unique.
        matrix: float32 (N, d); rows are L2-normalised when produced by an `Encoder`.
    """

    ids: list[str]
    matrix: np.ndarray

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        self.matrix = np.ascontiguousarray(self.matrix, dtype=np.float32)
        if self.matrix.ndim != 2:
            raise ValueError(f"NoteVectors.matrix must be 2-D (N, d), got shape {self.matrix.shape}")
        if len(self.ids) != self.matrix.shape[0]:
            raise ValueError(f"NoteVectors: {len(self.ids)} ids but {self.matrix.shape[0]} vector rows")
        if len(set(self.ids)) != len(self.ids):
            seen: set[str] = set()
            dup = next(i for i in self.ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise ValueError(f"NoteVectors: duplicate note id {dup!r}")
        self._row = {note_id: row for row, note_id in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def row(self, note_id: str) -> int:
        """Row index of `note_id`; KeyError naming the id if absent."""
        try:
            return self._row[str(note_id)]
        except KeyError:
            raise KeyError(f"note id {note_id!r} has no embedding ({len(self.ids)} notes embedded)") from None

    def rows(self, note_ids: list[str]) -> np.ndarray:
        return np.array([self.row(n) for n in note_ids], dtype=np.int64)

    def __contains__(self, note_id: object) -> bool:
        return str(note_id) in self._row

    def subset(self, note_ids: list[str]) -> NoteVectors:
        """The vectors of `note_ids`, in that order."""
        return NoteVectors(list(note_ids), self.matrix[self.rows(list(note_ids))])

    def save(self, path: str | Path) -> Path:
        """Write `path` (.npz); the parent folder is created. Written to a temp file then renamed (atomic)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, ids=np.array(self.ids, dtype=np.str_), vectors=self.matrix)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> NoteVectors:
        """Read a file written by `save`; a clear error names the file if it is missing or malformed."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"vectors file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                ids, matrix = data["ids"], data["vectors"]
        except (KeyError, ValueError, OSError) as exc:
            raise ValueError(f"{path}: not a NoteVectors file (need arrays 'ids' and 'vectors'): {exc}") from exc
        return cls([str(i) for i in ids.tolist()], matrix)


def grown_capacity(capacity: int, needed: int) -> int:
    """The row capacity a growing row store takes to hold `needed` rows: doubling (amortised O(1) appends)."""
    return capacity if needed <= capacity else max(needed, 2 * capacity, 64)


def grow_rows(array: np.ndarray, rows: int, fill=0) -> np.ndarray:
    """`array` with its first axis grown to `rows`, the new rows set to `fill` (same dtype and trailing shape)."""
    out = np.full((rows, *array.shape[1:]), fill, dtype=array.dtype)
    out[: len(array)] = array
    return out
