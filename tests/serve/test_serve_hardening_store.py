"""Cases 2 and 3 of issue #13: one process per index folder; a failed WAL append never comes back."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import numpy as np
import pytest

from notellm.data.schema import Note
from notellm.serve.store import IndexLockedError, LocalNoteIndex


def _notes(prefix: str, n: int) -> list[Note]:
    return [Note(note_id=f"{prefix}{i}", title=f"t {prefix}{i}", content="c") for i in range(n)]


def _unit(rng, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def root(tmp_path):
    return LocalNoteIndex.create(tmp_path / "ix", _notes("n", 3), _unit(np.random.default_rng(0), 3, 8))


def test_a_second_opener_is_refused_with_a_clear_message(root):
    first = LocalNoteIndex.open(root)
    with pytest.raises(IndexLockedError, match="in use by another process"):
        LocalNoteIndex.open(root)
    first.close()
    LocalNoteIndex.open(root).close()  # free again once the holder closes


def test_a_second_process_is_refused_and_loses_nothing(root):
    first = LocalNoteIndex.open(root)
    first.upsert(_notes("acked", 1), _unit(np.random.default_rng(1), 1, 8))
    leftover = root / "snap-000009.tmp"  # the first process's compaction in progress
    leftover.mkdir()
    code = ("import sys; from notellm.serve.store import LocalNoteIndex\n"
            f"LocalNoteIndex.open({str(root)!r})")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert run.returncode != 0 and "in use by another process" in run.stderr
    assert leftover.exists()  # the refused opener did not clean the holder's temp files
    first.close()
    again = LocalNoteIndex.open(root)
    assert again.get("acked0") is not None
    again.close()


def test_overwrite_and_milvus_seeding_refuse_a_live_folder(root, tmp_path):
    live = LocalNoteIndex.open(root)
    with pytest.raises(IndexLockedError):
        LocalNoteIndex.create(root, _notes("x", 1), _unit(np.random.default_rng(2), 1, 8), overwrite=True)
    pytest.importorskip("milvus_lite")
    from notellm.serve.milvus import MilvusNoteIndex

    with pytest.raises(IndexLockedError):
        MilvusNoteIndex.open(str(tmp_path / "m.db"), "seeded", seed_from=root)
    assert len(live) == 3
    live.close()


class _DiskFull:
    """Makes os.write fail with ENOSPC after `budget` bytes (a disk that fills mid-record)."""

    def __init__(self, monkeypatch, budget: int, truncate_fails: bool = False) -> None:
        self.budget, self.real_write = budget, os.write
        monkeypatch.setattr(os, "write", self.write)
        if truncate_fails:
            monkeypatch.setattr(os, "ftruncate", self.no_truncate)

    def write(self, fd, data):
        if self.budget <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = self.real_write(fd, bytes(data)[: self.budget])
        self.budget -= n
        return n

    @staticmethod
    def no_truncate(fd, length):
        raise OSError(errno.EIO, "I/O error")


def test_a_failed_delete_is_not_replayed_after_restart(root, monkeypatch):
    index = LocalNoteIndex.open(root)
    with monkeypatch.context() as patch:
        _DiskFull(patch, budget=10)
        with pytest.raises(OSError):
            index.delete("n0")
    assert index.get("n0") is not None  # not acknowledged, not applied
    index.upsert(_notes("later", 1), _unit(np.random.default_rng(3), 1, 8))  # a later successful append
    index._wal.close()
    index._release_lock()  # the process dies here
    again = LocalNoteIndex.open(root)
    assert again.get("n0") is not None and again.get("later0") is not None
    again.close()


def test_writes_are_refused_when_the_log_cannot_be_cut_back(root, monkeypatch):
    index = LocalNoteIndex.open(root)
    with monkeypatch.context() as patch:
        _DiskFull(patch, budget=10, truncate_fails=True)
        with pytest.raises(OSError):
            index.delete("n0")
    with pytest.raises(OSError, match="refused"):
        index.upsert(_notes("later", 1), _unit(np.random.default_rng(4), 1, 8))
    index._wal.close()
    index._release_lock()
    again = LocalNoteIndex.open(root)  # the torn tail is dropped on reopen; nothing unacknowledged comes back
    assert again.get("n0") is not None and again.get("later0") is None
    again.close()
