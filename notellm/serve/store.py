"""`LocalNoteIndex`: the default, durable, in-process note index (snapshot + write-ahead log + exact FAISS).

On-disk layout of an index folder (written by `notellm index build`, kept up to date by the server):

    index.json            manifest: format, version, dim, current snapshot, the last WAL generation it covers
    snap-<G>/vectors.npy  float32 (N, d) embeddings, loaded with allow_pickle=False
    snap-<G>/notes.parquet  note_id, title, content, hashtags, category, url, row-aligned with vectors.npy
    wal-<G+1>.log ...     write-ahead logs (wal.py) of the upserts/deletes made after that snapshot

Choices:
- Durability: every write is appended to the WAL and fsynced *before* it is applied in memory and acknowledged.
  Restart = load the manifest's snapshot, replay every WAL with a higher generation. A torn last record (crash
  mid-write) was never acknowledged and is dropped.
- Compaction (every `compact_every` records, and on close): under the lock, copy the live state and rotate to a
  fresh WAL generation; then, with writers running again, write `snap-<G>.tmp/`, fsync, rename it to `snap-<G>/`,
  and atomically replace `index.json` (write temp + fsync + rename + fsync dir). Only then are older snapshots
  and WALs deleted. A crash at any step leaves either the old or the new manifest, each complete; leftovers
  (`*.tmp`, unreferenced snapshots, covered WALs) are removed on the next open.
- The FAISS index is rebuilt from the snapshot vectors on load (no faiss files are ever read). It is an exact
  `IndexFlatIP` in an `IndexIDMap2` keyed by our own row numbers, so a live delete is `remove_ids` (HNSW could
  not delete in place; exact search stays under ~10 ms up to ~1M 64-d vectors on one core).
- One process per folder: `open` and `create` take an exclusive `flock` on `index.lock` (released by `close`,
  or by the kernel when the process dies). A second server, an `index build --overwrite` or a Milvus seeding
  on a live folder is refused with `IndexLockedError`, so none can compact away, overwrite or clean up files
  holding the first one's acknowledged writes; leftovers are only removed by the holder of the lock.
- Concurrency: one lock guards the WAL, the metadata and the FAISS index; a reader holds it for the whole
  search + metadata lookup, so no reader ever sees a half-applied update. Each critical section is short
  (an fsync for writers, one flat search for readers).
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
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from notellm.atomicdir import fsync_path
from notellm.data.schema import CATEGORY, CONTENT, HASHTAGS, NOTE_ID, TITLE, Note
from notellm.serve.codec import URL, note_from_dict, note_to_dict, note_url
from notellm.serve.wal import WriteAheadLog, replay

log = logging.getLogger(__name__)

FORMAT = "notellm-index"
VERSION = 1
MANIFEST = "index.json"
LOCK_FILE = "index.lock"
VECTORS_FILE = "vectors.npy"
NOTES_FILE = "notes.parquet"
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


def _wal_name(gen: int) -> str:
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


def _write_snapshot(root: Path, gen: int, notes: list[Note], matrix: np.ndarray) -> str:
    """Write snap-<gen>/ atomically (temp dir, fsync every file, rename); returns its name."""
    name = _snap_name(gen)
    tmp, final = root / (name + ".tmp"), root / name
    for stale in (tmp, final):  # leftovers of a crashed compaction; the manifest never points at them
        if stale.exists():
            shutil.rmtree(stale)
    tmp.mkdir(parents=True)
    np.save(tmp / VECTORS_FILE, np.ascontiguousarray(matrix, dtype=np.float32), allow_pickle=False)
    frame = pd.DataFrame({
        NOTE_ID: [n.note_id for n in notes], TITLE: [n.title for n in notes], CONTENT: [n.content for n in notes],
        HASHTAGS: [list(n.hashtags) for n in notes], CATEGORY: [n.category for n in notes],
        URL: [note_url(n) for n in notes],
    })
    frame.to_parquet(tmp / NOTES_FILE, index=False)
    for path in (tmp / VECTORS_FILE, tmp / NOTES_FILE):
        _fsync_file(path)
    fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(root)
    return name


def _read_snapshot(snap: Path, dim: int) -> tuple[list[Note], np.ndarray]:
    for path in (snap / VECTORS_FILE, snap / NOTES_FILE):
        if not path.is_file():
            raise IndexFormatError(f"{path}: missing (the index folder is incomplete; rebuild it)")
    matrix = np.load(snap / VECTORS_FILE, allow_pickle=False)  # (N, d)
    if matrix.dtype != np.float32 or matrix.ndim != 2 or matrix.shape[1] != dim:
        raise IndexFormatError(f"{snap / VECTORS_FILE}: expected float32 (N, {dim}), "
                               f"got {matrix.dtype} {matrix.shape}")
    frame = pd.read_parquet(snap / NOTES_FILE)
    missing = [c for c in (NOTE_ID, TITLE, CONTENT, HASHTAGS, CATEGORY) if c not in frame.columns]
    if missing or len(frame) != len(matrix):
        raise IndexFormatError(f"{snap / NOTES_FILE}: needs columns note_id,title,content,hashtags,category and "
                               f"{len(matrix)} rows; missing {missing}, has {len(frame)} rows")
    notes = [note_from_dict(r) for r in frame.to_dict("records")]  # the url column is optional
    return notes, matrix


class LocalNoteIndex:
    """Durable notes + exact FAISS search in one process (see module docstring for the on-disk protocol)."""

    name = "faiss"

    def __init__(self, root: Path, dim: int, manifest: dict, compact_every: int) -> None:
        self.root, self.dim, self.compact_every = root, dim, compact_every
        self._manifest = manifest
        self._lock = threading.Lock()  # guards notes, matrix, faiss and the WAL
        self._compact_lock = threading.Lock()  # one compaction at a time
        self._notes: dict[str, Note] = {}
        self._row_of: dict[str, int] = {}
        self._id_at: dict[int, str] = {}
        self._matrix = np.zeros((1024, dim), dtype=np.float32)  # row store, grows by doubling
        self._free: list[int] = []
        self._next_row = 0
        self._faiss = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._wal: WriteAheadLog | None = None
        self._wal_gen = 0
        self._compactor: threading.Thread | None = None
        self._lock_file = None  # the folder's flock, held from open to close

    # --- creation / opening ----------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, notes: list[Note], vectors: np.ndarray, *, info: dict | None = None,
               overwrite: bool = False) -> Path:
        """Write a fresh index folder holding `notes` and their `vectors` (N, d); returns the folder."""
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
            snapshot = _write_snapshot(root, 0, notes, vectors)
            manifest = {"format": FORMAT, "version": VERSION, "dim": int(vectors.shape[1]), "snapshot": snapshot,
                        "covers_wal": 0, "notes": len(notes), "info": info or {}}
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
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise IndexFormatError(f"{path}: not valid JSON: {exc}") from exc
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise IndexFormatError(f"{path}: format {manifest.get('format')!r} v{manifest.get('version')!r}, "
                                   f"expected {FORMAT!r} v{VERSION}")
        snapshot, covers = str(manifest.get("snapshot", "")), int(manifest.get("covers_wal", -1))
        if not _SNAP_RE.match(snapshot) or covers < 0:
            raise IndexFormatError(f"{path}: bad snapshot name {snapshot!r} or covers_wal {covers}")
        index = cls(root, int(manifest["dim"]), manifest, compact_every)
        notes, matrix = _read_snapshot(root / snapshot, index.dim)
        index._apply_upsert(notes, matrix)
        wal_gens = sorted(int(m.group(1)) for p in root.iterdir() if (m := _WAL_RE.match(p.name)))
        replayed = 0
        for gen in (g for g in wal_gens if g > covers):
            for record in replay(root / _wal_name(gen)):
                index._apply_record(record, root / _wal_name(gen))
                replayed += 1
        index._wal_gen = max([covers + 1] + wal_gens)
        index._wal = WriteAheadLog(root / _wal_name(index._wal_gen))
        index._wal.records = replayed
        index._remove_leftovers(snapshot, covers)
        log.info("opened %s: %d notes (%d from snapshot, %d log records replayed)", root, len(index), len(notes),
                 replayed)
        return index

    def _remove_leftovers(self, snapshot: str, covers: int) -> None:
        for child in self.root.iterdir():
            snap, wal = _SNAP_RE.match(child.name), _WAL_RE.match(child.name)
            stale = child.name.endswith(".tmp") or (snap and child.name != snapshot) or \
                (wal and int(wal.group(1)) <= covers)
            if stale:
                shutil.rmtree(child) if child.is_dir() else child.unlink()

    # --- in-memory state (callers hold self._lock or own the object exclusively) ------------------------------
    def _apply_record(self, record: dict, source: Path) -> None:
        op = record.get("op")
        if op == "upsert":
            raw = base64.b64decode(record["vectors"])
            matrix = np.frombuffer(raw, dtype=np.float32).reshape(len(record["notes"]), self.dim)
            self._apply_upsert([note_from_dict(n) for n in record["notes"]], matrix)
        elif op == "delete":
            for note_id in record["ids"]:
                self._apply_delete(note_id)
        else:
            raise IndexFormatError(f"{source}: unknown log operation {op!r}")

    def _apply_upsert(self, notes: list[Note], matrix: np.ndarray) -> None:
        for note in notes:
            self._apply_delete(note.note_id)
        rows = []
        for note in notes:
            row = self._free.pop() if self._free else self._take_row()
            self._notes[note.note_id], self._row_of[note.note_id], self._id_at[row] = note, row, note.note_id
            rows.append(row)
        if rows:
            rows_arr = np.asarray(rows, dtype=np.int64)
            self._matrix[rows_arr] = matrix
            self._faiss.add_with_ids(np.ascontiguousarray(matrix, dtype=np.float32), rows_arr)

    def _take_row(self) -> int:
        if self._next_row == len(self._matrix):
            grown = np.zeros((2 * len(self._matrix), self.dim), dtype=np.float32)
            grown[: self._next_row] = self._matrix
            self._matrix = grown
        self._next_row += 1
        return self._next_row - 1

    def _apply_delete(self, note_id: str) -> bool:
        row = self._row_of.pop(note_id, None)
        if row is None:
            return False
        del self._notes[note_id], self._id_at[row]
        self._faiss.remove_ids(np.asarray([row], dtype=np.int64))
        self._free.append(row)
        return True

    # --- NoteIndex contract -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._notes)

    def get(self, note_id: str) -> Note | None:
        with self._lock:
            return self._notes.get(note_id)

    def get_many(self, note_ids: list[str]) -> list[Note | None]:
        with self._lock:
            return [self._notes.get(n) for n in note_ids]

    def vectors(self, note_ids: list[str]) -> np.ndarray:
        with self._lock:
            missing = [n for n in note_ids if n not in self._row_of]
            if missing:
                raise KeyError(f"unknown note id(s): {missing[:5]}")
            return self._matrix[[self._row_of[n] for n in note_ids]].copy()  # (n, d)

    def upsert(self, notes: list[Note], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(notes), self.dim):
            raise ValueError(f"upsert: expected vectors of shape ({len(notes)}, {self.dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError("upsert: vectors hold NaN or inf")
        ids = [n.note_id for n in notes]
        if len(set(ids)) != len(ids):
            raise ValueError("upsert: the same note id appears twice in one request")
        record = {"op": "upsert", "notes": [note_to_dict(n) for n in notes],
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
            k = min(int(k), self._faiss.ntotal)
            if k < 1:
                return []
            scores, rows = self._faiss.search(query, k)  # (1, k), (1, k)
            return [(self._id_at[int(r)], float(s)) for s, r in zip(scores[0], rows[0]) if r >= 0]

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
        """Fold the logs into a new snapshot (atomic; safe to call while serving)."""
        if not self._compact_lock.acquire(blocking=False):
            return
        try:
            if self._wal.broken is not None:  # keep refusing writes: the log's tail may hold an unacked record
                log.error("%s: not compacting: the write-ahead log refuses writes until restart", self.root)
                return
            with self._lock:  # copy the live state and rotate the log: later writes go to the next generation
                ids = list(self._notes)
                notes = [self._notes[i] for i in ids]
                matrix = self._matrix[[self._row_of[i] for i in ids]] if ids else np.zeros((0, self.dim), np.float32)
                covered = self._wal_gen
                self._wal.close()
                self._wal_gen += 1
                self._wal = WriteAheadLog(self.root / _wal_name(self._wal_gen))
            snapshot = _write_snapshot(self.root, covered, notes, matrix)
            manifest = dict(self._manifest, snapshot=snapshot, covers_wal=covered, notes=len(notes))
            _write_manifest(self.root, manifest)
            self._manifest = manifest
            self._remove_leftovers(snapshot, covered)
            log.info("compacted %s into %s (%d notes)", self.root, snapshot, len(notes))
        finally:
            self._compact_lock.release()
