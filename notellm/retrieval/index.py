"""The note vector index of the package: exact, HNSW or IVF behind one contract.

Contract (what every caller, and the durable store of serve/store.py wrapped around it, may rely on):
- `add(ids, matrix)` inserts notes or replaces them (same id = new vector); `remove(ids)` deletes by id (unknown
  ids are ignored) and returns how many went; `len`, `in`, `ids`, `vector(id)`, `vectors(ids)` read the contents.
- `search(queries (nq, d), k) -> (scores (nq, k) float32, labels (nq, k) int64)`, best first, the faiss
  convention: `-1` labels and `-inf` scores fill slots no note could fill; `note_ids(labels)` maps labels to ids.
  `similar(id, k)` is the I2I form (the note itself excluded); `neighbour_table(k)` answers it for every note at
  once. Scores are inner products: on L2-normalised vectors that is cosine, the method's score (docs/method.md §5.1).
- Every added vector gets an int64 label (insertion order), never reused until `compact()` renumbers them.
- The exact kind (`flat`, alias `exact`) is the brute force of `notellm.retrieval.exact`: `queries @ matrix.T`
  then `top_k`, so ties come back in insertion order and results equal a stable brute-force sort. HNSW and IVF-Flat
  (faiss, for large pools) are approximate; `IndexConfig.kind = auto` picks exact up to `exact_max` vectors.
- Every vector is also kept in a row store by label (faiss IVF/HNSW cannot reconstruct reliably after deletes).
- Deletes: flat and IVF forget a label at once (IVF through `remove_ids`). FAISS HNSW cannot delete a graph node,
  so a removed HNSW note stays in the graph as a *tombstone* (it still routes searches) and is filtered out inside
  the search by a faiss `IDSelectorBitmap` of the live labels: results never hold a removed note. When
  tombstones use up the search beam and a query finds fewer than k live notes, it is searched again with a 4x
  wider beam (then exactly, as a last resort), so a search returns k live notes whenever there are k.
  Tombstones cost memory and some recall; `needs_compaction` says when they pass
  `IndexConfig.max_dead_fraction`, and `compact()` (or building a new index) drops them.
- `save(dir)` writes `labels.json` + `vectors.npy` (+ `index.faiss` for HNSW/IVF); `load(dir)` reads them back
  (`vectors.npy` with allow_pickle=False). Only load folders this class wrote (faiss files are trusted input).
  `freeze()` copies the state (under the caller's lock) so that it can be written later without the index.
  Saving is not durable across crashes by itself (no WAL); serve/store.py keeps its own log around the index.
- Not thread-safe: a caller that shares an index between threads holds one lock around every call.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from notellm.retrieval.exact import top_k
from notellm.retrieval.vectors import NoteVectors, grow_rows, grown_capacity

INDEX_FILE = "index.faiss"
LABELS_FILE = "labels.json"
VECTORS_FILE = "vectors.npy"
FILES = (LABELS_FILE, VECTORS_FILE, INDEX_FILE)
EXACT_BLOCK = 1 << 24  # exact search scores at most this many (query, note) pairs at once (64 MiB of float32)
KINDS = ("auto", "flat", "hnsw", "ivf")


@dataclass
class IndexConfig:
    """How to build the vector index."""

    kind: Literal["auto", "flat", "exact", "hnsw", "ivf"] = "auto"
    """flat (or exact) = exact inner product; hnsw / ivf = approximate; auto = flat up to `exact_max` vectors, else
    hnsw."""
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
    max_dead_fraction: float = 0.25
    """`needs_compaction` once removed notes still held (HNSW tombstones, row-store slots) pass this share."""

    def __post_init__(self) -> None:
        if self.kind == "exact":
            self.kind = "flat"
        if self.kind not in KINDS:
            raise ValueError(f"index.kind must be auto|flat|exact|hnsw|ivf, got {self.kind!r}")
        for name in ("exact_max", "hnsw_m", "hnsw_ef_construction", "hnsw_ef_search", "ivf_nlist", "ivf_nprobe"):
            if getattr(self, name) < 1:
                raise ValueError(f"index.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.max_dead_fraction <= 1:
            raise ValueError(f"index.max_dead_fraction must be in (0, 1], got {self.max_dead_fraction}")

    def resolved_kind(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "flat" if n <= self.exact_max else "hnsw"


@dataclass(frozen=True)
class IndexState:
    """A copy of an index's contents, detached from it (`VectorIndex.freeze`), that `save` writes to a folder."""

    meta: dict
    matrix: np.ndarray  # (N, d) the live vectors, in label order (= meta["ids"] order)
    faiss_bytes: np.ndarray | None  # serialised faiss structure (HNSW/IVF), None for flat

    def save(self, directory: str | Path) -> list[Path]:
        """Write the index files into `directory` (each to a temp name, then renamed); returns their paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.faiss_bytes is not None:
            tmp_index = directory / (INDEX_FILE + ".tmp")
            self.faiss_bytes.tofile(tmp_index)
        tmp_meta = directory / (LABELS_FILE + ".tmp")
        tmp_meta.write_text(json.dumps(self.meta), encoding="utf-8")
        tmp_vec = directory / (VECTORS_FILE + ".tmp")
        with open(tmp_vec, "wb") as fh:
            np.save(fh, self.matrix, allow_pickle=False)
        tmp_vec.replace(directory / VECTORS_FILE)
        written = [directory / VECTORS_FILE]
        if self.faiss_bytes is not None:
            tmp_index.replace(directory / INDEX_FILE)
            written.append(directory / INDEX_FILE)
        else:
            (directory / INDEX_FILE).unlink(missing_ok=True)  # a stale approximate index must not be read back
        tmp_meta.replace(directory / LABELS_FILE)
        return [*written, directory / LABELS_FILE]


class VectorIndex:
    """Mutable note-embedding index: `add`, `remove`, `search`, `similar` (I2I), `save`/`load` (contract above)."""

    def __init__(self, dim: int, cfg: IndexConfig | None = None, kind: str | None = None) -> None:
        self.cfg = cfg or IndexConfig()
        self.dim = int(dim)
        self.kind = "flat" if kind == "exact" else (kind or self.cfg.resolved_kind(0))
        self._label_of: dict[str, int] = {}  # live note id -> label; dict order = label order
        self._ids: list[str | None] = []  # label -> note id, None once removed
        self._matrix = np.zeros((0, self.dim), dtype=np.float32)  # (capacity, d) row store by label
        self._live = np.zeros(0, dtype=bool)  # (capacity,) label still holds a note
        self._selector: tuple[faiss.IDSelector, np.ndarray] | None = None  # HNSW live-label filter (+ its bitmap)
        self._index = self._make(self.kind, train=None)

    # --- construction -------------------------------------------------------------------------------------
    def _make(self, kind: str, train: np.ndarray | None) -> faiss.Index | None:
        """The faiss structure of an approximate kind; None for `flat` (exact search reads the row store)."""
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
            return base  # IVF stores our labels itself and removes by them (an IDMap around it breaks on removal)
        else:
            raise ValueError(f"unknown index kind {kind!r}")
        return faiss.IndexIDMap2(base)  # HNSW keeps positions 0..n-1; the map holds our labels

    @classmethod
    def build(cls, vectors: NoteVectors, cfg: IndexConfig | None = None, kind: str | None = None) -> VectorIndex:
        """An index holding every vector of `vectors` (kind: as given, else resolved from the pool size)."""
        cfg = cfg or IndexConfig()
        kind = kind or cfg.resolved_kind(len(vectors))
        index = cls(vectors.dim, cfg, kind="flat")  # no faiss structure yet: IVF needs its training vectors
        index.kind = kind
        index._index = index._make(kind, train=vectors.matrix if kind == "ivf" else None)
        index.add(vectors.ids, vectors.matrix)
        return index

    # --- contents -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._label_of)

    def __contains__(self, note_id: object) -> bool:
        return str(note_id) in self._label_of

    @property
    def ids(self) -> list[str]:
        return list(self._label_of)

    @property
    def dead(self) -> int:
        """Labels whose note was removed but which still take room (HNSW tombstones, row-store slots)."""
        return len(self._ids) - len(self._label_of)

    @property
    def needs_compaction(self) -> bool:
        return self.dead > self.cfg.max_dead_fraction * max(len(self._ids), 1)

    def vector(self, note_id: str) -> np.ndarray:
        """A copy of the stored vector of `note_id` (d,)."""
        if str(note_id) not in self._label_of:
            raise KeyError(f"note id {note_id!r} is not in the index")
        return self._matrix[self._label_of[str(note_id)]].copy()

    def vectors(self, note_ids: list[str]) -> np.ndarray:
        """The stored vectors of `note_ids`, in that order.  -> (n, d)"""
        missing = [n for n in note_ids if str(n) not in self._label_of]
        if missing:
            raise KeyError(f"note id(s) not in the index: {missing[:5]}")
        return self._matrix[[self._label_of[str(n)] for n in note_ids]] if note_ids else \
            np.zeros((0, self.dim), np.float32)

    # --- mutation -----------------------------------------------------------------------------------------
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
        start = len(self._ids)
        self._reserve(start + len(ids))
        labels = np.arange(start, start + len(ids), dtype=np.int64)
        if self._index is not None:
            self._index.add_with_ids(matrix, labels)
        self._matrix[start : start + len(ids)] = matrix
        self._live[start : start + len(ids)] = True
        self._ids.extend(ids)
        self._label_of.update(zip(ids, labels.tolist()))
        self._selector = None

    def _reserve(self, needed: int) -> None:
        """Grow the row store (by doubling) to hold `needed` labels."""
        new = grown_capacity(len(self._live), needed)
        if new > len(self._live):
            self._matrix, self._live = grow_rows(self._matrix, new), grow_rows(self._live, new, False)

    def remove(self, ids: list[str]) -> int:
        """Remove notes by id (unknown ids are ignored); returns how many were removed."""
        labels = [self._label_of.pop(str(i)) for i in ids if str(i) in self._label_of]
        if not labels:
            return 0
        for label in labels:
            self._ids[label] = None
        self._live[labels] = False
        if self.kind == "ivf":
            self._index.remove_ids(np.array(labels, dtype=np.int64))
        self._selector = None  # HNSW: the labels stay in the graph as tombstones, filtered at search
        return len(labels)

    def compact(self) -> None:
        """Drop removed notes for good: labels renumbered 0..N-1 in the same order, HNSW rebuilt (O(N log N)), IVF
        emptied and refilled (its trained clusters kept), the row store shrunk. Outstanding labels become invalid."""
        if not self.dead:
            return
        ids = self.ids
        matrix = self.vectors(ids)
        if self.kind == "hnsw":
            self._index = self._make("hnsw", train=None)
        elif self._index is not None:
            self._index.reset()
        self._label_of, self._ids = {}, []
        self._matrix, self._live = np.zeros((0, self.dim), dtype=np.float32), np.zeros(0, dtype=bool)
        self._selector = None
        if ids:
            self.add(ids, matrix)

    # --- queries ------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product. Returns scores (nq, k) float32 and labels (nq, k) int64; -1 / -inf when empty."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)  # (nq, d)
        if queries.shape[1] != self.dim:
            raise ValueError(f"search: queries have dimension {queries.shape[1]}, index has {self.dim}")
        if k < 1:
            raise ValueError(f"search: k must be >= 1, got {k}")
        if self._index is None:
            return self._exact_search(queries, k)
        scores, labels = self._index.search(queries, int(k), params=self._search_params())  # (nq, k) each
        if self.kind == "hnsw" and self.dead:  # tombstones can use up the beam: widen it for queries left short
            want, ef = min(k, len(self)), self.cfg.hnsw_ef_search
            short = np.flatnonzero((labels >= 0).sum(axis=1) < want)
            while len(short) and ef < len(self._ids):
                ef *= 4
                params = self._search_params(ef)
                scores[short], labels[short] = self._index.search(queries[short], int(k), params=params)
                short = short[(labels[short] >= 0).sum(axis=1) < want]
            if len(short):  # the live notes were not reachable through the graph: answer those exactly
                scores[short], labels[short] = self._exact_search(queries[short], k)
        scores = np.where(labels < 0, -np.inf, scores).astype(np.float32)
        return scores, labels.astype(np.int64)

    def _exact_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Brute force over the live rows of the row store (the flat kind's search)."""
        n = len(self._ids)
        matrix, live = self._matrix[:n], self._live[:n]  # (n, d), (n,) in label order
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        labels = np.full((len(queries), k), -1, dtype=np.int64)
        block = max(1, EXACT_BLOCK // max(1, n))  # query rows per block: bounded (block, n) scores
        for start in range(0, len(queries), block):
            sims = queries[start : start + block] @ matrix.T  # (b, n)
            if self.dead:
                sims[:, ~live] = -np.inf
            top = top_k(sims, k)  # (b, min(k, n))
            best = np.take_along_axis(sims, top, axis=1)
            scores[start : start + block, : top.shape[1]] = best
            labels[start : start + block, : top.shape[1]] = np.where(np.isneginf(best), -1, top)
        return scores, labels

    def _search_params(self, ef: int | None = None) -> faiss.SearchParameters | None:
        """HNSW with tombstones: search only the live labels (a bitmap selector, rebuilt after a mutation)."""
        if self.kind != "hnsw" or not self.dead:
            return None
        if self._selector is None:
            bitmap = np.packbits(self._live[: len(self._ids)], bitorder="little")  # bit i = label i is live
            self._selector = (faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap)
        return faiss.SearchParametersHNSW(sel=self._selector[0], efSearch=ef or self.cfg.hnsw_ef_search)

    def note_ids(self, labels: np.ndarray) -> list[list[str | None]]:
        """Map a (nq, k) label array from `search` to note ids (None for -1 slots)."""
        ids = self._ids
        return [[ids[lab] if lab >= 0 else None for lab in row] for row in np.atleast_2d(labels).tolist()]

    def similar(self, note_id: str, k: int) -> list[tuple[str, float]]:
        """I2I: the k notes most similar to an indexed note, excluding the note itself, best first."""
        scores, labels = self.search(self.vector(note_id)[None, :], k + 1)
        out = [(nid, float(s)) for nid, s in zip(self.note_ids(labels)[0], scores[0]) if nid and nid != str(note_id)]
        return out[:k]

    def neighbour_table(self, k: int, block: int = 4096) -> tuple[list[str], np.ndarray, np.ndarray]:
        """`similar` for every note at once, by this index's own search: (ids (N,), scores (N, k), positions (N, k)
        into ids), best first, -inf / -1 where fewer than k other notes were found."""
        n = len(self._ids)
        labels = np.flatnonzero(self._live[:n])  # live labels, ascending = `ids` order
        ids = [self._ids[lab] for lab in labels.tolist()]
        position = np.full(max(n, 1), -1, dtype=np.int64)
        position[labels] = np.arange(len(labels))
        scores = np.full((len(labels), k), -np.inf, dtype=np.float32)
        positions = np.full((len(labels), k), -1, dtype=np.int64)
        for start in range(0, len(labels), block):
            rows = labels[start : start + block]
            s, lab = self.search(self._matrix[rows], k + 1)  # (b, k + 1): one more, for the note itself
            pos = np.where(lab >= 0, position[np.maximum(lab, 0)], -1)
            s = np.where(pos == np.arange(start, start + len(rows))[:, None], -np.inf, s)  # not its own neighbour
            order = np.argsort(-s, axis=1, kind="stable")[:, :k]  # drops the self slot (or the last one)
            s, pos = np.take_along_axis(s, order, 1), np.take_along_axis(pos, order, 1)
            scores[start : start + len(rows)], positions[start : start + len(rows)] = s, np.where(
                np.isneginf(s), -1, pos)
        return ids, scores, positions

    # --- persistence --------------------------------------------------------------------------------------
    def freeze(self) -> IndexState:
        """A detached copy of the contents (faiss structure serialised), to write later with `IndexState.save`."""
        labels = list(self._label_of.values())
        meta = {"dim": self.dim, "kind": self.kind, "config": asdict(self.cfg), "next_label": len(self._ids),
                "ids": list(self._label_of), "labels": labels}
        matrix = self._matrix[labels] if labels else np.zeros((0, self.dim), dtype=np.float32)
        return IndexState(meta, matrix, faiss.serialize_index(self._index) if self._index is not None else None)

    def save(self, directory: str | Path) -> Path:
        """Write `labels.json`, `vectors.npy` (+ `index.faiss` for HNSW/IVF) into `directory` (temp, then renamed)."""
        self.freeze().save(directory)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path) -> VectorIndex:
        """Read a folder written by `save` (or by earlier versions of this class)."""
        directory = Path(directory)
        for name in (LABELS_FILE, VECTORS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory}: missing {name}; written by VectorIndex.save")
        meta = json.loads((directory / LABELS_FILE).read_text(encoding="utf-8"))
        index = cls(int(meta["dim"]), IndexConfig(**meta["config"]), kind="flat")
        index.kind = meta["kind"]
        labels = np.asarray(meta["labels"], dtype=np.int64)
        matrix = np.load(directory / VECTORS_FILE, allow_pickle=False)
        if matrix.dtype != np.float32 or matrix.shape != (len(labels), index.dim):
            raise ValueError(f"{directory / VECTORS_FILE}: expected float32 ({len(labels)}, {index.dim}), "
                             f"got {matrix.dtype} {matrix.shape}")
        next_label = int(meta["next_label"])
        if len(labels) and (labels.min() < 0 or labels.max() >= next_label or len(set(meta["ids"])) != len(labels)):
            raise ValueError(f"{directory / LABELS_FILE}: labels outside 0..{next_label - 1} or duplicate ids")
        index._reserve(next_label)
        index._matrix[labels], index._live[labels] = matrix, True
        index._ids = [None] * next_label
        for note_id, label in zip(meta["ids"], labels.tolist()):
            index._ids[label] = str(note_id)
        index._label_of = {str(i): int(lab) for i, lab in zip(meta["ids"], labels.tolist())}
        if index.kind != "flat":
            if not (directory / INDEX_FILE).is_file():
                raise FileNotFoundError(f"{directory}: missing {INDEX_FILE} for a {index.kind} index")
            index._index = faiss.read_index(str(directory / INDEX_FILE))
            if not len(labels) <= index._index.ntotal <= next_label:
                raise ValueError(f"{directory}: index holds {index._index.ntotal} vectors but labels.json lists "
                                 f"{len(labels)} live of {next_label} labels")
        return index
