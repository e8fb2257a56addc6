"""Append-only write-ahead log: one JSON record per line, framed with its byte length and CRC32.

Line format (ASCII header, UTF-8 payload):

    <length: 8 hex digits> <crc32: 8 hex digits> <json payload>\\n

`append` writes (unbuffered) and `fsync`s before returning, so a record is durable once the caller acknowledges it.
A crash can only tear the *last* record (it was never acknowledged): `replay` detects it (short line, wrong
length, CRC mismatch or invalid JSON on the final line), drops it and truncates the file back to the last good
record. A bad record with good records after it is real corruption and raises `WalCorruptError` naming the file
and byte offset. Hand-written because no maintained library offers a small, fsync-per-record framed log.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any

from notellm.atomicdir import fsync_path

log = logging.getLogger(__name__)

HEADER_BYTES = 18  # 8 hex + space + 8 hex + space


class WalCorruptError(RuntimeError):
    """A log record in the middle of a file failed its length/CRC check (not a torn tail)."""


def encode_record(record: dict[str, Any]) -> bytes:
    """Frame one record: header with payload length and CRC32, the compact JSON payload, newline."""
    payload = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"%08x %08x " % (len(payload), zlib.crc32(payload)) + payload + b"\n"


def _decode_line(line: bytes) -> dict[str, Any] | None:
    """The record held by one full line (newline included), or None if the frame does not check out."""
    if len(line) < HEADER_BYTES + 1 or not line.endswith(b"\n"):
        return None
    try:
        length, crc = int(line[0:8], 16), int(line[9:17], 16)
    except ValueError:
        return None
    payload = line[HEADER_BYTES:-1]
    if line[8:9] != b" " or line[17:18] != b" " or len(payload) != length or zlib.crc32(payload) != crc:
        return None
    try:
        record = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def replay(path: str | Path, truncate_torn_tail: bool = True) -> list[dict[str, Any]]:
    """All intact records of the log at `path`, in order; a torn final record is dropped (and cut off the file).

    Raises:
        WalCorruptError: a record that is not the last one fails its check.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        line = data[offset:] if end < 0 else data[offset : end + 1]
        record = _decode_line(line)
        if record is None:
            if end < 0 or end + 1 == len(data):  # the final record: torn by a crash, never acknowledged
                log.warning("%s: dropping a torn final record at byte %d (%d bytes)", path, offset, len(line))
                if truncate_torn_tail:
                    with open(path, "r+b") as handle:
                        handle.truncate(offset)
                        handle.flush()
                        os.fsync(handle.fileno())
                break
            raise WalCorruptError(f"{path}: corrupt record at byte {offset} followed by more records; "
                                  "the log was damaged outside a crash (restore it from a backup)")
        records.append(record)
        offset += len(line)
    return records


def read_new_records(fd: int, offset: int, source: str | Path) -> tuple[list[dict[str, Any]], int]:
    """The complete records appended to the open log `fd` after byte `offset`, and the offset after them.

    For a reader that follows a log another process writes: a record is complete once its newline is in the file
    (the writer emits each record with one append), so a half-written last line is left for the next call. A
    complete line that fails its check is damage, not a write in progress.

    Raises:
        WalCorruptError: a complete record fails its length/CRC check.
    """
    size = os.fstat(fd).st_size
    if size <= offset:
        return [], offset
    data = os.pread(fd, size - offset, offset)
    records: list[dict[str, Any]] = []
    start = 0
    while (end := data.find(b"\n", start)) >= 0:
        record = _decode_line(data[start : end + 1])
        if record is None:
            raise WalCorruptError(f"{source}: corrupt record at byte {offset + start}")
        records.append(record)
        start = end + 1
    return records, offset + start


class WalRefusedError(OSError):
    """The log could not be cut back after a failed append; it refuses every write until the process restarts."""


class WriteAheadLog:
    """An open log file that appends framed records durably (one unbuffered `os.write` loop + fsync per append).

    Unbuffered on purpose: a buffered writer keeps the bytes a failed write could not store (disk full) and writes
    them with the next append, so a write answered with an error came back after a restart (issue #13, case 3).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._end = os.lseek(self._fd, 0, os.SEEK_END)  # bytes of acknowledged records
        fsync_path(self.path.parent)  # make the file's creation itself durable
        self.records = 0
        self.broken: OSError | None = None  # set when a failed append could not be cut back

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and return only once it is on stable storage.

        If the write or fsync fails (disk full, I/O error), the file is cut back to the last acknowledged record,
        so a later append never sits behind a half-written record. If that cut fails too, the log
        refuses every later append (`WalRefusedError`): the next open drops the torn tail instead.
        """
        if self.broken is not None:
            raise WalRefusedError(errno.EIO, f"{self.path}: writes refused until restart: an earlier failed "
                                             f"append could not be cut back ({self.broken})")
        if self._fd < 0:
            raise ValueError(f"{self.path}: the log is closed")
        data = memoryview(encode_record(record))
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)
        except BaseException:
            try:
                os.ftruncate(self._fd, self._end)  # made durable by the next append's fsync
            except OSError as cut:
                self.broken = cut
                log.error("%s: could not cut back a failed append (%s); refusing writes until restart", self.path,
                          cut)
            raise
        self._end += len(data)
        self.records += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

