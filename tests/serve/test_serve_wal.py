"""The write-ahead log: framing, torn-tail recovery, corruption detection.

    PYTHONPATH=. python -m pytest tests/serve/test_serve_wal.py -q
"""

from __future__ import annotations

import pytest

from notellm.serve.wal import WalCorruptError, WriteAheadLog, encode_record, replay


def test_frame_is_length_crc_payload():
    # payload '{"a":1}' is 7 bytes; its CRC32 (zlib/IEEE) is 0x561bacaf, computed once by hand with crc32 tables
    assert encode_record({"a": 1}) == b'00000007 561bacaf {"a":1}\n'


def test_append_then_replay_roundtrip(tmp_path):
    log = WriteAheadLog(tmp_path / "w.log")
    records = [{"op": "upsert", "i": i, "text": "héllo\nworld"} for i in range(5)]
    for r in records:
        log.append(r)
    log.close()
    assert replay(tmp_path / "w.log") == records


def test_every_torn_tail_is_dropped_and_truncated(tmp_path):
    """Cut the file at every byte inside the last record: the first records survive, the file is truncated."""
    good = encode_record({"i": 0}) + encode_record({"i": 1})
    last = encode_record({"i": 2, "pad": "x" * 20})
    for cut in range(1, len(last)):
        path = tmp_path / f"cut{cut}.log"
        path.write_bytes(good + last[:cut])
        assert replay(path) == [{"i": 0}, {"i": 1}], cut
        assert path.read_bytes() == good, cut


def test_bit_flip_in_last_record_is_a_torn_tail(tmp_path):
    data = bytearray(encode_record({"i": 0}) + encode_record({"i": 1}))
    data[-3] ^= 0x01
    path = tmp_path / "w.log"
    path.write_bytes(bytes(data))
    assert replay(path) == [{"i": 0}]


def test_corruption_before_good_records_raises_with_offset(tmp_path):
    first = bytearray(encode_record({"i": 0}))
    first[20] ^= 0x01
    path = tmp_path / "w.log"
    path.write_bytes(bytes(first) + encode_record({"i": 1}))
    with pytest.raises(WalCorruptError, match=r"w\.log: corrupt record at byte 0"):
        replay(path)


def test_missing_log_is_empty(tmp_path):
    assert replay(tmp_path / "none.log") == []


def test_a_failed_append_leaves_no_half_record(tmp_path, monkeypatch):
    import notellm.serve.wal as wal

    log = WriteAheadLog(tmp_path / "w.log")
    log.append({"i": 0})
    real_fsync = wal.os.fsync

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wal.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        log.append({"i": 1})
    monkeypatch.setattr(wal.os, "fsync", real_fsync)
    log.append({"i": 2})
    log.close()
    assert replay(tmp_path / "w.log") == [{"i": 0}, {"i": 2}]
