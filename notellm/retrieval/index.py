"""The note vector index of the package: exact, HNSW or IVF behind one contract.

Contract (what every caller, and a durable store wrapped around it, may rely on):
- `add(ids, matrix)` inserts notes or replaces them (same id = new vector); `remove(ids)` deletes by id (unknown
  ids are ignored) and returns how many went; `len`, `in`, `ids`, `vector(id)`, `vectors(ids)` read the contents.
- `search(queries (nq, d), k) -> (scores (nq, k) float32, labels (nq, k) int64)`, best first, the faiss
  convention: `-1` labels and `-inf` scores fill slots no note could fill; `note_ids(labels)` maps labels to ids.
  `similar(id, k)` is the I2I form (the note itself excluded). Scores are inner products: on L2-normalised
  vectors that is cosine, the method's score (docs/method.md §5.1).
- Every note gets a stable int64 label (insertion order, never reused), so add/remove never renumber.
- The exact kind (`flat`) is the brute force of `notellm.retrieval.exact`: `queries @ matrix.T` then `top_k`, so
  ties come back in insertion order and results equal a stable brute-force sort. HNSW and IVF-Flat (faiss, for
  large pools) are approximate; `IndexConfig.kind = auto` picks exact up to `exact_max` vectors.
- A copy of every vector is kept by label (faiss IVF/HNSW cannot reconstruct reliably after deletes). HNSW cannot
  delete in place; `remove` on HNSW rebuilds the graph from those copies (O(N); batch your removals).
- `save(dir)` writes `labels.json` + `vectors.npy` (+ `index.faiss` for HNSW/IVF); `load(dir)` reads them back
  (`vectors.npy` with allow_pickle=False). Only load folders this class wrote (faiss files are trusted input).
  Saving is not durable across crashes by itself (no WAL); a service keeps its own log around the index.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from notellm.retrieval.exact import top_k
from notellm.retrieval.vectors import NoteVectors

INDEX_FILE = "index.faiss"
LABELS_FILE = "labels.json"
VECTORS_FILE = "vectors.npy"
EXACT_BLOCK = 1 << 24  # exact search scores at most this many (query, note) pairs at once (64 MiB of float32)


@dataclass
class IndexConfig:
    """How to build the vector index."""

    kind: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    """flat = exact inner product; hnsw / ivf = approximate; auto = flat up to `exact_max` vectors, else hnsw."""
    exact_max: int = 200_000
    """`auto` switches from exact to HNSW above this many vectors."""
    hnsw_m: int = 32
    """HNSW graph degree (faiss M)."""
    hnsw_ef_construction: int = 200
    """HNSW build-time beam width."""
    hnsw_ef_search: int = 128
    """HNSW query-time beam width (recall/speed knob)."""
    ivf_nlist: int = 1024
    """IVF number of coarse clusters (capped at N/39 so training has enough points)."""
    ivf_nprobe: int = 32
    """IVF clusters visited per query."""

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "flat", "hnsw", "ivf"):
            raise ValueError(f"index.kind must be auto|flat|hnsw|ivf, got {self.kind!r}")
        for name in ("exact_max", "hnsw_m", "hnsw_ef_construction", "hnsw_ef_search", "ivf_nlist", "ivf_nprobe"):
            if getattr(self, name) < 1:
                raise ValueError(f"index.{name} must be >= 1, got {getattr(self, name)}")

    def resolved_kind(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "flat" if n <= self.exact_max else "hnsw"


class VectorIndex:
    """Mutable note-embedding index: `add`, `remove`, `search`, `similar` (I2I), `save`/`load` (contract above)."""

    def __init__(self, dim: int, cfg: IndexConfig | None = None, kind: str | None = None) -> None:
        self.cfg = cfg or IndexConfig()
        self.dim = int(dim)
        self.kind = kind or self.cfg.resolved_kind(0)
        self._label_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._next_label = 0
        self._vectors: dict[int, np.ndarray] = {}
        self._exact: tuple[np.ndarray, np.ndarray] | None = None  # (labels (n,), matrix (n, d)) cache of `flat`
        self._index = self._make(self.kind, train=None)

    # --- construction -------------------------------------------------------------------------------------
    def _make(self, kind: str, train: np.ndarray | None) -> faiss.Index | None:
        """The faiss structure of an approximate kind; None for `flat` (exact search reads `_vectors`)."""
        if kind == "flat":
            return None
        if kind == "hnsw":
            base = faiss.IndexHNSWFlat(self.dim, self.cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = self.cfg.hnsw_ef_construction
            base.hnsw.efSearch = self.cfg.hnsw_ef_search
        elif kind == "ivf":
            if train is None or len(train) == 0:
                raise ValueError("an IVF index must be built from vectors (VectorIndex.build), not empty")
            nlist = max(1, min(self.cfg.ivf_nlist, len(train) // 39))
            quantizer = faiss.IndexFlatIP(self.dim)
            base = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            base.train(train)
            base.nprobe = min(self.cfg.ivf_nprobe, nlist)
        else:
            raise ValueError(f"unknown index kind {kind!r}")
        return faiss.IndexIDMap2(base)

    @classmethod
    def build(cls, vectors: NoteVectors, cfg: IndexConfig | None = None) -> VectorIndex:
        """An index holding every vector of `vectors` (kind resolved from the pool size)."""
        cfg = cfg or IndexConfig()
        kind = cfg.resolved_kind(len(vectors))
        index = cls(vectors.dim, cfg, kind="flat")  # no faiss structure yet: IVF needs its training vectors
        index.kind = kind
        index._index = index._make(kind, train=vectors.matrix if kind == "ivf" else None)
        index.add(vectors.ids, vectors.matrix)
        return index

    # --- mutation -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._label_of)

    def __contains__(self, note_id: object) -> bool:
        return str(note_id) in self._label_of

    @property
    def ids(self) -> list[str]:
        return list(self._label_of)

    def add(self, ids: list[str], matrix: np.ndarray) -> None:
        """Add (or replace) notes. matrix: (n, d) float32, one row per id."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        ids = [str(i) for i in ids]
        if matrix.ndim != 2 or matrix.shape != (len(ids), self.dim):
            raise ValueError(f"add: expected a ({len(ids)}, {self.dim}) matrix, got {matrix.shape}")
        if len(set(ids)) != len(ids):
            raise ValueError("add: duplicate note ids in one call")
        existing = [i for i in ids if i in self._label_of]
        if existing:
            self.remove(existing)
        labels = np.arange(self._next_label, self._next_label + len(ids), dtype=np.int64)
        self._next_label += len(ids)
        if self._index is not None:
            self._index.add_with_ids(matrix, labels)
        for note_id, label, row in zip(ids, labels.tolist(), matrix):
            self._label_of[note_id] = label
            self._id_of[label] = note_id
            self._vectors[label] = row
        self._exact = None

    def remove(self, ids: list[str]) -> int:
        """Remove notes by id (unknown ids are ignored); returns how many were removed."""
        labels = [self._label_of.pop(str(i)) for i in ids if str(i) in self._label_of]
        if not labels:
            return 0
        for label in labels:
            del self._id_of[label]
            del self._vectors[label]
        self._exact = None
        if self.kind == "hnsw":  # HNSW has no delete: rebuild from the stored vectors of the notes that stay
            keep = np.array(sorted(self._id_of), dtype=np.int64)
            self._index = self._make("hnsw", train=None)
            if len(keep):
                self._index.add_with_ids(np.stack([self._vectors[int(lab)] for lab in keep]), keep)
        elif self._index is not None:
            self._index.remove_ids(np.array(labels, dtype=np.int64))
        return len(labels)

    # --- queries ------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product. Returns scores (nq, k) float32 and labels (nq, k) int64; -1 / -inf when empty."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)  # (nq, d)
        if queries.shape[1] != self.dim:
            raise ValueError(f"search: queries have dimension {queries.shape[1]}, index has {self.dim}")
        if k < 1:
            raise ValueError(f"search: k must be >= 1, got {k}")
        if self._index is not None:
            scores, labels = self._index.search(queries, int(k))  # (nq, k), (nq, k)
            scores = np.where(labels < 0, -np.inf, scores).astype(np.float32)
            return scores, labels.astype(np.int64)
        all_labels, matrix = self._exact_matrix()
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        labels = np.full((len(queries), k), -1, dtype=np.int64)
        block = max(1, EXACT_BLOCK // max(1, len(matrix)))  # query rows per block: bounded (block, n) scores
        for start in range(0, len(queries), block):
            sims = queries[start : start + block] @ matrix.T  # (b, n)
            top = top_k(sims, k)  # (b, min(k, n))
            scores[start : start + block, : top.shape[1]] = np.take_along_axis(sims, top, axis=1)
            labels[start : start + block, : top.shape[1]] = all_labels[top]
        return scores, labels

    def _exact_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels (n,), matrix (n, d)) in label order, rebuilt after a mutation."""
        if self._exact is None:
            labels = np.array(sorted(self._vectors), dtype=np.int64)
            matrix = np.stack([self._vectors[int(lab)] for lab in labels]) if len(labels) else \
                np.zeros((0, self.dim), dtype=np.float32)
            self._exact = (labels, matrix)
        return self._exact

    def note_ids(self, labels: np.ndarray) -> list[list[str | None]]:
        """Map a (nq, k) label array from `search` to note ids (None for -1 slots)."""
        return [[self._id_of.get(int(lab)) if lab >= 0 else None for lab in row] for row in np.atleast_2d(labels)]

    def vector(self, note_id: str) -> np.ndarray:
        """The stored vector of `note_id` (d,)."""
        if str(note_id) not in self._label_of:
            raise KeyError(f"note id {note_id!r} is not in the index")
        return self._vectors[self._label_of[str(note_id)]]

    def vectors(self, note_ids: list[str]) -> np.ndarray:
        """The stored vectors of `note_ids`, in that order.  -> (n, d)"""
        return np.stack([self.vector(n) for n in note_ids]) if note_ids else np.zeros((0, self.dim), np.float32)

    def similar(self, note_id: str, k: int) -> list[tuple[str, float]]:
        """I2I: the k notes most similar to an indexed note, excluding the note itself, best first."""
        scores, labels = self.search(self.vector(note_id)[None, :], k + 1)
        out = [(nid, float(s)) for nid, s in zip(self.note_ids(labels)[0], scores[0]) if nid and nid != str(note_id)]
        return out[:k]

    # --- persistence --------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write `labels.json`, `vectors.npy` (+ `index.faiss` for HNSW/IVF) into `directory` (temp, then renamed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self._index is not None:
            tmp_index = directory / (INDEX_FILE + ".tmp")
            faiss.write_index(self._index, str(tmp_index))
        meta = {
            "dim": self.dim,
            "kind": self.kind,
            "config": asdict(self.cfg),
            "next_label": self._next_label,
            "ids": list(self._label_of),
            "labels": list(self._label_of.values()),
        }
        tmp_meta = directory / (LABELS_FILE + ".tmp")
        tmp_meta.write_text(json.dumps(meta), encoding="utf-8")
        tmp_vec = directory / (VECTORS_FILE + ".tmp")
        with open(tmp_vec, "wb") as fh:
            labels = list(self._label_of.values())
            np.save(fh, np.stack([self._vectors[lab] for lab in labels]) if labels else np.zeros((0, self.dim)))
        tmp_vec.replace(directory / VECTORS_FILE)
        if self._index is not None:
            tmp_index.replace(directory / INDEX_FILE)
        else:
            (directory / INDEX_FILE).unlink(missing_ok=True)  # a stale approximate index must not be read back
        tmp_meta.replace(directory / LABELS_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> VectorIndex:
        directory = Path(directory)
        for name in (LABELS_FILE, VECTORS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory}: missing {name}; written by VectorIndex.save")
        meta = json.loads((directory / LABELS_FILE).read_text(encoding="utf-8"))
        index = cls(int(meta["dim"]), IndexConfig(**meta["config"]), kind="flat")
        index.kind, index._next_label = meta["kind"], int(meta["next_label"])
        index._label_of = {str(i): int(lab) for i, lab in zip(meta["ids"], meta["labels"])}
        index._id_of = {lab: i for i, lab in index._label_of.items()}
        matrix = np.load(directory / VECTORS_FILE, allow_pickle=False).astype(np.float32)
        index._vectors = {int(lab): row for lab, row in zip(meta["labels"], matrix)}
        if index.kind != "flat":
            if not (directory / INDEX_FILE).is_file():
                raise FileNotFoundError(f"{directory}: missing {INDEX_FILE} for a {index.kind} index")
            index._index = faiss.read_index(str(directory / INDEX_FILE))
            if index._index.ntotal != len(index._label_of):
                raise ValueError(f"{directory}: index holds {index._index.ntotal} vectors but labels.json lists "
                                 f"{len(index._label_of)} ids")
        return index
