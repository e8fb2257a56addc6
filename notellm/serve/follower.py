"""`WalFollower`: a read-only copy of a served index folder that follows its writer's write-ahead log.

The reader processes of `notellm serve --workers N` (serve/workers.py) each hold one. The folder keeps its single
writer (`LocalNoteIndex`, which holds the folder's flock); a follower never writes, locks or cleans anything there.

- Open: read the manifest, load its snapshot, then every log after it (`wal-<covers+1>.log`, ...) up to the last
  complete record. If a compaction deletes a file while this runs, start again from the new manifest.
- `sync()` (before every request, and every `poll_s` when idle): `fstat` the open log; apply the complete
  records appended since the last call; a half-written last line waits for the next call (the writer appends a
  record with one write, so a record is complete once its newline is there). Cost when nothing is new: two
  `stat`s and one `fstat`, a few microseconds.
- Rotation: compaction closes `wal-G` and creates `wal-G+1` under the writer's lock, so once `wal-G+1` exists
  (or `wal-G` is gone: deleted by a later compaction) `wal-G` gets no more records. `sync` checks that *before*
  reading the rest of `wal-G`, then moves on. The open descriptor keeps a deleted `wal-G` readable.
- Reload (a fresh load from the current manifest, swapped in under the lock) when the follower fell behind (the
  next log was compacted away before it was opened), when the log shrank under it (the writer cut back a failed
  append: disk error), and after a compaction that rebuilt an HNSW graph without its tombstones (the follower's own
  graph, fed the same deletes, holds as many; the reload picks up the rebuilt one).

Consistency: the writer appends and fsyncs a record before it acknowledges the write, and a follower syncs before
it answers, so a read sent after a write's acknowledgement sees that write, on whichever process serves it
(read-your-writes). A read racing a write may see it a moment before its acknowledgement; records are applied
whole, so no read sees half of a multi-note write.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from notellm.data.schema import Note
from notellm.serve.store import IndexFormatError, LocalNoteIndex, read_manifest, read_snapshot, record_ops, wal_name
from notellm.serve.wal import read_new_records

log = logging.getLogger(__name__)

OPEN_ATTEMPTS = 5  # a compaction may delete the files being loaded; each retry starts from a newer manifest


class ReadOnlyIndexError(RuntimeError):
    """A write reached a follower; writes go to the process that owns the folder."""


class _Behind(Exception):
    """The follower cannot continue from its position (a log was compacted away or cut back): reload."""


class WalFollower(LocalNoteIndex):
    """A read-only `NoteIndex` over an index folder that another process writes (see module docstring)."""

    def __init__(self, root: Path, dim: int, manifest: dict) -> None:
        super().__init__(root, dim, manifest, compact_every=0)
        self._gen = 0  # generation of the log being followed
        self._fd: int | None = None  # its open descriptor (None until the file exists)
        self._offset = 0  # bytes of it applied
        self._shed_after: int | None = None  # reload once a snapshot covers this log (HNSW tombstones)
        self.on_upsert: Callable[[list[str], np.ndarray], None] | None = None  # e.g. the related cache
        self.on_delete: Callable[[str], None] | None = None
        self.on_reload: Callable[[], None] | None = None
        self.reloads = 0

    # --- opening ----------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | Path, compact_every: int = 0) -> WalFollower:  # noqa: ARG003 - never compacts
        root = Path(root)
        if not (root / "index.json").is_file():
            raise IndexFormatError(f"{root}: no index.json; not a notellm index folder")
        error: Exception | None = None
        for _ in range(OPEN_ATTEMPTS):
            try:
                return cls._load(root)
            except (FileNotFoundError, IndexFormatError, _Behind) as exc:  # files compacted away mid-load
                error = exc
        raise IndexFormatError(f"{root}: could not load a consistent snapshot in {OPEN_ATTEMPTS} attempts "
                               f"({error})")

    @classmethod
    def _load(cls, root: Path) -> WalFollower:
        manifest = read_manifest(root)
        follower = cls(root, int(manifest["dim"]), manifest)
        try:
            notes, follower._index = read_snapshot(root / manifest["snapshot"], follower.dim,
                                                   int(manifest["version"]))
        except IndexFormatError:
            if read_manifest(root)["snapshot"] != manifest["snapshot"]:
                raise FileNotFoundError(manifest["snapshot"]) from None  # compacted meanwhile: retry
            raise
        follower._notes = {n.note_id: n for n in notes}
        follower._gen = manifest["covers_wal"] + 1
        follower._catch_up(notify=False)
        return follower

    # --- following --------------------------------------------------------------------------------------------
    def sync(self) -> int:
        """Apply what the writer logged since the last call; returns the number of records applied."""
        try:
            applied = self._catch_up(notify=True)
            if self._shed_after is not None and self._manifest_covers() >= self._shed_after:
                self._reload("the writer rebuilt its index without tombstones")
            return applied
        except _Behind as exc:
            self._reload(str(exc))
            return 0

    def _catch_up(self, notify: bool) -> int:
        applied = 0
        while True:
            if self._fd is None:
                try:
                    self._fd = os.open(self.root / wal_name(self._gen), os.O_RDONLY)
                except FileNotFoundError:
                    if self._manifest_covers() >= self._gen:
                        raise _Behind(f"{wal_name(self._gen)} was compacted away before it was read") from None
                    return applied  # not created yet
                self._offset = 0
            # checked before reading: once the next log exists (or this one was deleted by a compaction that
            # covers it), this one gets no more records
            rotated = (self.root / wal_name(self._gen + 1)).exists() or not (self.root / wal_name(self._gen)).exists()
            if os.fstat(self._fd).st_size < self._offset:
                raise _Behind(f"{wal_name(self._gen)} shrank under the follower (a failed append was cut back)")
            records, self._offset = read_new_records(self._fd, self._offset, self.root / wal_name(self._gen))
            for record in records:
                self._apply(record, notify)
            applied += len(records)
            if not rotated:
                return applied
            os.close(self._fd)
            self._fd, self._gen = None, self._gen + 1
            if self._index.needs_compaction:  # the writer's compaction of that log rebuilds its graph
                self._shed_after = self._gen - 1

    def _apply(self, record: dict, notify: bool) -> None:
        op, payload, matrix = record_ops(record, self.dim, self.root / wal_name(self._gen))
        with self._lock:
            if op == "upsert":
                self._apply_upsert(payload, matrix)
            else:
                payload = [note_id for note_id in payload if self._apply_delete(note_id)]
        if not notify:
            return
        if op == "upsert" and self.on_upsert is not None:
            self.on_upsert([n.note_id for n in payload], matrix)
        elif op == "delete" and self.on_delete is not None:
            for note_id in payload:
                self.on_delete(note_id)

    def _manifest_covers(self) -> int:
        try:
            return read_manifest(self.root)["covers_wal"]
        except FileNotFoundError:
            return -1

    def _reload(self, why: str) -> None:
        """Load the folder afresh and take its state (the related cache is rebuilt through `on_reload`)."""
        log.info("%s: reloading the snapshot: %s", self.root, why)
        fresh = type(self).open(self.root)
        with self._lock:
            self._notes, self._index, self._manifest = fresh._notes, fresh._index, fresh._manifest
            if self._fd is not None:
                os.close(self._fd)
            self._gen, self._fd, self._offset = fresh._gen, fresh._fd, fresh._offset
            fresh._fd = None
            self._shed_after = None
        self.reloads += 1
        if self.on_reload is not None:
            self.on_reload()

    @property
    def position(self) -> tuple[int, int]:
        """(log generation, bytes of it applied)."""
        return self._gen, self._offset

    # --- the NoteIndex contract: reads are LocalNoteIndex's; writes belong to the folder's owner --------------
    def upsert(self, notes: list[Note], vectors: np.ndarray) -> None:
        raise ReadOnlyIndexError(f"{self.root}: this process follows the index read-only; send writes to its owner")

    def delete(self, note_id: str) -> bool:
        raise ReadOnlyIndexError(f"{self.root}: this process follows the index read-only; send writes to its owner")

    def compact(self) -> None:
        raise ReadOnlyIndexError(f"{self.root}: only the folder's owner compacts it")

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
