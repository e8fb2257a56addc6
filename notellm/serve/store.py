"""`LocalNoteIndex`: the default, durable, in-process note index: snapshot + write-ahead log around the package's
one vector index (`notellm.retrieval.index.VectorIndex`: exact, HNSW or IVF).

On-disk layout of an index folder (written by `notellm index build`, kept up to date by the server):

    index.json               manifest: format, version, dim, index kind + config, current snapshot, the last
                             WAL generation it covers
    snap-<G>/labels.json     the VectorIndex files (VectorIndex.save): ids, labels, kind and IndexConfig,
    snap-<G>/vectors.npy       float32 (N, d) embeddings (allow_pickle=False),
    snap-<G>/index.faiss       the HNSW graph / IVF lists (absent for the exact kind)
    snap-<G>/notes.parquet   note_id, title, content, hashtags, category, url, row-aligned with labels.json's ids
    wal-<G+1>.log ...        write-ahead logs (wal.py) of the upserts/deletes made after that snapshot

Version 1 folders (earlier releases: snap-<G>/vectors.npy + notes.parquet, always exact search) still open, as an
exact index; their next compaction writes a version 2 snapshot.

Choices:
- Index kind: `IndexConfig` (`notellm index build --kind flat|hnsw|ivf|auto --set hnsw_m=16 ...`), fixed when the
  folder is built and stored in it. Every kind answers `search(queries, k) -> (scores, labels)` and adds/removes
  by id. HNSW cannot delete a graph node: a deleted or replaced note stays in the graph as a tombstone that the
  search filters out (retrieval/index.py); compaction rebuilds the graph once tombstones pass
  `IndexConfig.max_dead_fraction` of it.
- Durability: every write is appended to the WAL and fsynced *before* it is applied in memory and acknowledged.
  Restart = load the manifest's snapshot, replay every WAL with a higher generation. A torn last record (crash
  mid-write) was never acknowledged and is dropped.
- Compaction (every `compact_every` records, and on close): under the lock, freeze a copy of the index (the faiss
  structure serialised: ~1 s for a 10^6-vector HNSW, the only pause readers see) and rotate to a fresh WAL
  generation; then, with writers running again, write `snap-<G>.tmp/`, fsync, rename it to `snap-<G>/`, and
  atomically replace `index.json` (write temp + fsync + rename + fsync dir). Only then are older snapshots and
  WALs deleted. A crash at any step leaves either the old or the new manifest, each complete; leftovers
  (`*.tmp`, unreferenced snapshots, covered WALs) are removed on the next open. When the index needs compaction
  (tombstones), the copy is rebuilt into a new index outside the lock; under the lock the writes logged since the
  rotation are replayed into it from the new WAL and it replaces the live one.
- The snapshot's faiss file is read back with `faiss.read_index`: only open folders this code wrote.
- One process per folder: `open` and `create` take an exclusive `flock` on `index.lock` (released by `close`,
  or by the kernel when the process dies). A second server, an `index build --overwrite` or a Milvus seeding
  on a live folder is refused with `IndexLockedError`, so none can compact away, overwrite or clean up files
  holding the first one's acknowledged writes; leftovers are only removed by the holder of the lock.
  Read-only followers (follower.py: the reader processes of `notellm serve --workers N`) take no lock and
  never write.
- Concurrency: one lock guards the WAL, the notes and the index; a reader holds it for the whole search + id
  lookup, so no reader ever sees a half-applied update. Each critical section is short (an fsync for writers,
  one search for readers).
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from notellm.atomicdir import fsync_path
from notellm.data.schema import CATEGORY, CONTENT, HASHTAGS, NOTE_ID, TITLE, URL, Note
from notellm.retrieval.index import LABELS_FILE, IndexConfig, IndexState, VectorIndex
from notellm.retrieval.vectors import NoteVectors
from notellm.serve.wal import WriteAheadLog, replay

log = logging.getLogger(__name__)

FORMAT = "notellm-index"
VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: exact search only, snapshot = vectors.npy + notes.parquet
MANIFEST = "index.json"
LOCK_FILE = "index.lock"
VECTORS_FILE = "vectors.npy"
NOTES_FILE = "notes.parquet"
NOTE_COLUMNS = (NOTE_ID, TITLE, CONTENT, HASHTAGS, CATEGORY)
_SNAP_RE = re.compile(r"^snap-(\d{6,})$")
_WAL_RE = re.compile(r"^wal-(\d{6,})\.log$")


class IndexFormatError(ValueError):
    """An index folder is missing, incomplete or not written by notellm."""


class IndexLockedError(ValueError):
    """Another process holds the index folder (serving it, building it or seeding from it). A ValueError so that
    every CLI command reports it as a plain error message."""


def _lock_folder(root: Path):
    """Take the folder's exclusive lock (non-blocking); returns the open lock file, which holds it until closed."""
    handle = open(root / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held for the life of the index
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise IndexLockedError(
            f"{root} is in use by another process ({holder}); stop it first. One index folder serves one process: "
            "copy the folder for a second server, or use --backend milvus for several servers") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    return handle


def _snap_name(gen: int) -> str:
    return f"snap-{gen:06d}"


def wal_name(gen: int) -> str:
    return f"wal-{gen:06d}.log"


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _write_manifest(root: Path, manifest: dict) -> None:
    tmp = root / (MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, root / MANIFEST)
    fsync_path(root)


def _notes_frame(notes: list[Note]) -> pd.DataFrame:
    """Notes as the snapshot's table: the canonical fields (the data model's codec) + the url column."""
    frame = pd.DataFrame([n.to_dict(extra=()) for n in notes], columns=list(NOTE_COLUMNS))
    frame[URL] = [n.url for n in notes]
    return frame


def _note(row: dict) -> Note:
    """A snapshot row or WAL record back to a Note (the data model's codec; an empty url is no url)."""
    return Note.from_dict(row, extra=(URL,) if row.get(URL) else ())


def _write_snapshot(root: Path, gen: int, notes: list[Note], state: IndexState) -> str:
    """Write snap-<gen>/ atomically (temp dir, fsync every file, rename); `notes` follow state's id order."""
    if [n.note_id for n in notes] != state.meta["ids"]:
        raise ValueError("snapshot: notes are not in the index's id order")
    name = _snap_name(gen)
    tmp, final = root / (name + ".tmp"), root / name
    for stale in (tmp, final):  # leftovers of a crashed compaction; the manifest never points at them
        if stale.exists():
            shutil.rmtree(stale)
    tmp.mkdir(parents=True)
    files = state.save(tmp)
    _notes_frame(notes).to_parquet(tmp / NOTES_FILE, index=False)
    for path in (*files, tmp / NOTES_FILE):
        _fsync_file(path)
    fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(root)
    return name


def _read_notes(snap: Path, expected_ids: list[str] | None, rows: int) -> list[Note]:
    path = snap / NOTES_FILE
    if not path.is_file():
        raise IndexFormatError(f"{path}: missing (the index folder is incomplete; rebuild it)")
    frame = pd.read_parquet(path)
    missing = [c for c in NOTE_COLUMNS if c not in frame.columns]
    if missing or len(frame) != rows:
        raise IndexFormatError(f"{path}: needs columns {','.join(NOTE_COLUMNS)} and {rows} rows; missing "
                               f"{missing}, has {len(frame)} rows")
    notes = [_note(r) for r in frame.to_dict("records")]  # the url column is optional
    if expected_ids is not None and [n.note_id for n in notes] != expected_ids:
        raise IndexFormatError(f"{path}: note ids are not row-aligned with {snap / LABELS_FILE}")
    return notes


def read_snapshot(snap: Path, dim: int, version: int) -> tuple[list[Note], VectorIndex]:
    """The notes and the index of one snapshot (version 1: exact index over vectors.npy)."""
    if version == 1:
        path = snap / VECTORS_FILE
        if not path.is_file():
            raise IndexFormatError(f"{path}: missing (the index folder is incomplete; rebuild it)")
        matrix = np.load(path, allow_pickle=False)  # (N, d)
        if matrix.dtype != np.float32 or matrix.ndim != 2 or matrix.shape[1] != dim:
            raise IndexFormatError(f"{path}: expected float32 (N, {dim}), got {matrix.dtype} {matrix.shape}")
        notes = _read_notes(snap, None, len(matrix))
        return notes, VectorIndex.build(NoteVectors([n.note_id for n in notes], matrix), IndexConfig(kind="flat"))
    try:
        index = VectorIndex.load(snap)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as exc:
        raise IndexFormatError(f"{snap}: unreadable index files ({exc}); rebuild the folder with "
                               "`notellm index build`") from exc
    if index.dim != dim:
        raise IndexFormatError(f"{snap / LABELS_FILE}: dim {index.dim}, the manifest says {dim}")
    return _read_notes(snap, index.ids, len(index)), index


def read_manifest(root: Path) -> dict:
    """The folder's checked manifest (format, readable version, snapshot name and covered WAL generation)."""
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise IndexFormatError(f"{path}: not valid JSON: {exc}") from exc
    version = manifest.get("version")
    if manifest.get("format") != FORMAT or version not in READABLE_VERSIONS:
        raise IndexFormatError(f"{path}: format {manifest.get('format')!r} v{version!r}; this notellm reads "
                               f"{FORMAT!r} v{'/'.join(map(str, READABLE_VERSIONS))}. Rebuild the folder with "
                               f"`notellm index build --out {root} --overwrite` (same --model and --data)")
    snapshot, covers = str(manifest.get("snapshot", "")), int(manifest.get("covers_wal", -1))
    if not _SNAP_RE.match(snapshot) or covers < 0:
        raise IndexFormatError(f"{path}: bad snapshot name {snapshot!r} or covers_wal {covers}")
    manifest["snapshot"], manifest["covers_wal"] = snapshot, covers
    return manifest


def record_ops(record: dict, dim: int, source: Path) -> tuple[str, list, np.ndarray | None]:
    """A WAL record as ("upsert", notes, vectors (n, d)) or ("delete", note ids, None)."""
    op = record.get("op")
    if op == "upsert":
        raw = base64.b64decode(record["vectors"])
        notes = [_note(n) for n in record["notes"]]
        return op, notes, np.frombuffer(raw, dtype=np.float32).reshape(len(notes), dim)
    if op == "delete":
        return op, list(record["ids"]), None
    raise IndexFormatError(f"{source}: unknown log operation {op!r}")


class LocalNoteIndex:
    """Durable notes + a VectorIndex in one process (see module docstring for the on-disk protocol)."""

    name = "faiss"

    def __init__(self, root: Path, dim: int, manifest: dict, compact_every: int) -> None:
        self.root, self.dim, self.compact_every = root, dim, compact_every
        self._manifest = manifest
        self._lock = threading.Lock()  # guards notes, the index and the WAL
        self._compact_lock = threading.Lock()  # one compaction at a time
        self._notes: dict[str, Note] = {}
        self._index = VectorIndex(dim, IndexConfig(kind="flat"))  # replaced by the snapshot's on open
        self._wal: WriteAheadLog | None = None
        self._wal_gen = 0
        self._compactor: threading.Thread | None = None
        self._lock_file = None  # the folder's flock, held from open to close

    # --- creation / opening ----------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, notes: list[Note], vectors: np.ndarray, *, info: dict | None = None,
               overwrite: bool = False, index: IndexConfig | None = None) -> Path:
        """Write a fresh index folder holding `notes` and their `vectors` (N, d); returns the folder.

        index: the vector index to build (default `IndexConfig()`: exact up to 200,000 notes, else HNSW)."""
        root = Path(root)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(notes):
            raise ValueError(f"create: {len(notes)} notes but vectors of shape {vectors.shape}")
        ids = [n.note_id for n in notes]
        if len(set(ids)) != len(ids):
            raise ValueError("create: duplicate note ids")
        if (root / MANIFEST).exists() and not overwrite:
            raise FileExistsError(f"{root} already holds a notellm index (pass overwrite / --overwrite)")
        root.mkdir(parents=True, exist_ok=True)
        lock = _lock_folder(root)  # refuses a folder a server is using
        try:
            if (root / MANIFEST).exists():
                for child in root.iterdir():
                    if child.name == MANIFEST or _SNAP_RE.match(child.name) or _WAL_RE.match(child.name) \
                            or child.name.endswith(".tmp"):
                        shutil.rmtree(child) if child.is_dir() else child.unlink()
            built = VectorIndex.build(NoteVectors(ids, vectors), index or IndexConfig())
            snapshot = _write_snapshot(root, 0, notes, built.freeze())
            manifest = {"format": FORMAT, "version": VERSION, "dim": int(vectors.shape[1]), "snapshot": snapshot,
                        "covers_wal": 0, "notes": len(notes), "index_kind": built.kind,
                        "index": asdict(built.cfg), "info": info or {}}
            _write_manifest(root, manifest)
        finally:
            lock.close()
        return root

    @classmethod
    def open(cls, root: str | Path, compact_every: int = 2000) -> LocalNoteIndex:
        """Load the snapshot, replay the write-ahead logs after it, clean leftovers, open the active log."""
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            raise IndexFormatError(f"{root}: no {MANIFEST}; not a notellm index folder "
                                   "(build one with `notellm index build --model M --data D --out {root}`)")
        lock = _lock_folder(root)
        try:
            index = cls._open_locked(root, path, compact_every)
        except BaseException:
            lock.close()
            raise
        index._lock_file = lock
        return index

    @classmethod
    def _open_locked(cls, root: Path, path: Path, compact_every: int) -> LocalNoteIndex:
        manifest = read_manifest(root)
        snapshot, covers, version = manifest["snapshot"], manifest["covers_wal"], manifest["version"]
        store = cls(root, int(manifest["dim"]), manifest, compact_every)
        notes, store._index = read_snapshot(root / snapshot, store.dim, int(version))
        store._notes = {n.note_id: n for n in notes}
        wal_gens = sorted(int(m.group(1)) for p in root.iterdir() if (m := _WAL_RE.match(p.name)))
        replayed = 0
        for gen in (g for g in wal_gens if g > covers):
            for record in replay(root / wal_name(gen)):
                store._apply_record(record, root / wal_name(gen))
                replayed += 1
        store._wal_gen = max([covers + 1] + wal_gens)
        store._wal = WriteAheadLog(root / wal_name(store._wal_gen))
        store._wal.records = replayed
        store._remove_leftovers(snapshot, covers)
        log.info("opened %s: %d notes, %s index (%d from snapshot v%s, %d log records replayed)", root, len(store),
                 store._index.kind, len(notes), version, replayed)
        return store

    def _remove_leftovers(self, snapshot: str, covers: int) -> None:
        for child in self.root.iterdir():
            snap, wal = _SNAP_RE.match(child.name), _WAL_RE.match(child.name)
            stale = child.name.endswith(".tmp") or (snap and child.name != snapshot) or \
                (wal and int(wal.group(1)) <= covers)
            if stale:
                shutil.rmtree(child) if child.is_dir() else child.unlink()

    # --- in-memory state (callers hold self._lock or own the object exclusively) ------------------------------
    def _apply_record(self, record: dict, source: Path) -> None:
        op, payload, matrix = record_ops(record, self.dim, source)
        if op == "upsert":
            self._apply_upsert(payload, matrix)
        else:
            for note_id in payload:
                self._apply_delete(note_id)

    def _apply_upsert(self, notes: list[Note], matrix: np.ndarray) -> None:
        self._index.add([n.note_id for n in notes], matrix)  # replaces notes already there
        self._notes.update((n.note_id, n) for n in notes)

    def _apply_delete(self, note_id: str) -> bool:
        if self._notes.pop(note_id, None) is None:
            return False
        self._index.remove([note_id])
        return True

    # --- NoteIndex contract -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._notes)

    @property
    def index_kind(self) -> str:
        """flat (exact), hnsw or ivf: the kind of vector index this folder was built with."""
        return self._index.kind

    def get(self, note_id: str) -> Note | None:
        with self._lock:
            return self._notes.get(note_id)

    def get_many(self, note_ids: list[str]) -> list[Note | None]:
        with self._lock:
            return [self._notes.get(n) for n in note_ids]

    def vectors(self, note_ids: list[str]) -> np.ndarray:
        with self._lock:
            missing = [n for n in note_ids if n not in self._notes]
            if missing:
                raise KeyError(f"unknown note id(s): {missing[:5]}")
            return self._index.vectors(note_ids)  # (n, d), a copy

    def upsert(self, notes: list[Note], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(notes), self.dim):
            raise ValueError(f"upsert: expected vectors of shape ({len(notes)}, {self.dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError("upsert: vectors hold NaN or inf")
        ids = [n.note_id for n in notes]
        if len(set(ids)) != len(ids):
            raise ValueError("upsert: the same note id appears twice in one request")
        record = {"op": "upsert", "notes": [n.to_dict(extra=(URL,) if n.url else ()) for n in notes],
                  "vectors": base64.b64encode(vectors.tobytes()).decode("ascii")}
        with self._lock:
            self._wal.append(record)  # durable first ...
            self._apply_upsert(notes, vectors)  # ... then visible
        self._maybe_compact()

    def delete(self, note_id: str) -> bool:
        with self._lock:
            if note_id not in self._notes:
                return False
            self._wal.append({"op": "delete", "ids": [note_id]})
            self._apply_delete(note_id)
        self._maybe_compact()
        return True

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        query = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, self.dim))  # (1, d)
        with self._lock:
            k = min(int(k), len(self._index))
            if k < 1:
                return []
            scores, labels = self._index.search(query, k)  # (1, k) each
            ids = self._index.note_ids(labels)[0]
        return [(i, s) for i, s in zip(ids, scores[0].tolist()) if i is not None]

    def neighbour_table(self, k: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every note's k nearest other notes by the index's own search (VectorIndex.neighbour_table)."""
        with self._lock:
            return self._index.neighbour_table(k)

    def search_titles(self, text: str, limit: int) -> list[Note]:
        needle = text.casefold().strip()
        out: list[Note] = []
        with self._lock:
            for note in self._notes.values():  # a linear scan: fine for the page's search box up to ~1M notes
                if not needle or needle in note.title.casefold():
                    out.append(note)
                    if len(out) >= limit:
                        break
        return out

    def close(self) -> None:
        if self._compactor is not None:
            self._compactor.join()
        if self._wal is not None and self._wal.records:
            self.compact()
        if self._wal is not None:
            self._wal.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None

    # --- compaction -------------------------------------------------------------------------------------------
    def _maybe_compact(self) -> None:
        if not self.compact_every or self._wal.records < self.compact_every or self._compact_lock.locked():
            return
        self._compactor = threading.Thread(target=self.compact, name="notellm-compact", daemon=True)
        self._compactor.start()

    def compact(self) -> None:
        """Fold the logs into a new snapshot (atomic; safe to call while serving); drops HNSW tombstones when
        the index needs it."""
        if not self._compact_lock.acquire(blocking=False):
            return
        try:
            if self._wal.broken is not None:  # keep refusing writes: the log's tail may hold an unacked record
                log.error("%s: not compacting: the write-ahead log refuses writes until restart", self.root)
                return
            with self._lock:  # copy the live state and rotate the log: later writes go to the next generation
                rebuild = self._index.needs_compaction
                ids = self._index.ids
                notes = [self._notes[i] for i in ids]
                state = None if rebuild else self._index.freeze()
                live = NoteVectors(ids, self._index.vectors(ids)) if rebuild else None
                cfg, kind = self._index.cfg, self._index.kind
                covered = self._wal_gen
                self._wal.close()
                self._wal_gen += 1
                self._wal = WriteAheadLog(self.root / wal_name(self._wal_gen))
            if rebuild:
                state = self._swap_in_rebuilt(VectorIndex.build(live, cfg, kind=kind))
            snapshot = _write_snapshot(self.root, covered, notes, state)
            manifest = dict(self._manifest, version=VERSION, snapshot=snapshot, covers_wal=covered,
                            notes=len(notes), index_kind=kind, index=asdict(cfg))
            _write_manifest(self.root, manifest)
            self._manifest = manifest
            self._remove_leftovers(snapshot, covered)
            log.info("compacted %s into %s (%d notes%s)", self.root, snapshot, len(notes),
                     ", index rebuilt without tombstones" if rebuild else "")
        finally:
            self._compact_lock.release()

    def _swap_in_rebuilt(self, fresh: VectorIndex) -> IndexState:
        """Bring `fresh` (built from the state at the log rotation) up to date and make it the live index; returns
        its state as of the rotation, for the snapshot."""
        state = fresh.freeze()  # before the newer writes: the snapshot covers the log up to the rotation
        with self._lock:  # every write since the rotation is in the current log (appended under this lock)
            for record in replay(self._wal.path, truncate_torn_tail=False):
                op, payload, matrix = record_ops(record, self.dim, self._wal.path)
                fresh.add([n.note_id for n in payload], matrix) if op == "upsert" else fresh.remove(payload)
            self._index = fresh
        return state
