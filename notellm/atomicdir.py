"""Write a whole folder so that readers (and a restart after a crash or power loss) see the old or the new one.

`writing_folder(final)` yields a temporary sibling; when the block finishes, every file in it is fsynced and it
replaces `final` in one step (Linux `renameat2(RENAME_EXCHANGE)`, else two renames), the parent is fsynced, and
only then is the old content deleted. A failure or kill inside the block leaves `final` untouched and a hidden
temp folder that the next write removes. Hand-written: the standard library has no atomic folder swap, and
this is two system calls around `os.rename`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def fsync_path(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """fsync every file and folder under `root` (deepest first)."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(Path(folder) / name)
        fsync_path(folder)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (both must exist); False where the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _siblings(final: Path, kind: str) -> list[Path]:
    return list(final.parent.glob(f".{final.name}.{kind}-*"))


@contextmanager
def writing_folder(final: str | Path) -> Iterator[Path]:
    """Yield an empty temp folder beside `final`; on success it atomically becomes `final` (see module doc)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in _siblings(final, "tmp") + _siblings(final, "old"):  # left by a killed earlier write
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
        fsync_tree(tmp)
        if final.exists() and _exchange(tmp, final):
            old = tmp  # after the exchange the temp name holds the old content
        else:
            old = None
            if final.exists():
                old = final.parent / f".{final.name}.old-{os.getpid()}"
                os.rename(final, old)
            os.rename(tmp, final)
        fsync_path(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
