"""Several server processes: `WalFollower` (a read-only copy that follows the writer's log) and `serve --workers N`
(N reader processes + the writer behind one port).

    PYTHONPATH=. python -m pytest tests/serve/test_serve_workers.py -q
"""

from __future__ import annotations

import base64
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from serve_testkit import HashingEmbedder
from typer.testing import CliRunner

from notellm.data.schema import Note
from notellm.retrieval.index import IndexConfig
from notellm.serve.follower import ReadOnlyIndexError, WalFollower
from notellm.serve.related_cache import RelatedCache
from notellm.serve.store import LocalNoteIndex
from notellm.serve.wal import WalCorruptError, encode_record

SERVER = Path(__file__).parent / "run_server.py"
WORDS = ["espresso", "grinder", "roast", "hops", "lager", "yeast", "qubit", "gate", "circuit", "crema", "malt"]


def _note(i: int, rng: random.Random) -> Note:
    return Note(note_id=f"new/{i}", title=" ".join(rng.sample(WORDS, 3)), content=f"note {i}")


def _same_state(follower: WalFollower, writer: LocalNoteIndex) -> None:
    ids = sorted(n.note_id for n in writer.search_titles("", len(writer)))
    assert sorted(n.note_id for n in follower.search_titles("", len(follower))) == ids
    assert np.array_equal(follower.vectors(ids), writer.vectors(ids))
    for note_id in ids[:: max(1, len(ids) // 6)]:
        query = writer.vectors([note_id])[0]
        assert follower.search(query, 5) == writer.search(query, 5)


@pytest.fixture
def writer(index_dir):
    store = LocalNoteIndex.open(index_dir, compact_every=0)  # compactions happen where a test calls compact()
    yield store
    store.close()


def test_follower_applies_upserts_replacements_and_deletes(writer, index_dir, embedder, notes):
    follower = WalFollower.open(index_dir)
    assert len(follower) == len(writer) == len(notes)
    new = Note(note_id="n/1", title="espresso crema", content="x")
    writer.upsert([new], embedder.encode([new]))
    assert follower.get("n/1") is None  # not yet synced
    assert follower.sync() == 1 and follower.get("n/1") == new
    changed = Note(note_id=notes[0].note_id, title="qubit gate circuit", content="moved")
    writer.upsert([changed], embedder.encode([changed]))
    writer.delete(notes[1].note_id)
    assert follower.sync() == 2
    assert follower.get(notes[0].note_id) == changed and follower.get(notes[1].note_id) is None
    _same_state(follower, writer)
    assert follower.sync() == 0  # nothing new: nothing applied
    with pytest.raises(ReadOnlyIndexError):
        follower.upsert([new], embedder.encode([new]))
    with pytest.raises(ReadOnlyIndexError):
        follower.delete("n/1")
    follower.close()


def test_follower_crosses_compactions_and_reloads_when_it_fell_behind(writer, index_dir, embedder):
    rng = random.Random(0)
    follower = WalFollower.open(index_dir)
    for step in range(30):
        note = _note(step % 12, rng)  # ids repeat: replacements
        writer.upsert([note], embedder.encode([note]))
        if rng.random() < 0.2 and len(writer) > 5:
            writer.delete(rng.choice([n.note_id for n in writer.search_titles("", 100)]))
        if step % 7 == 6:
            writer.compact()  # rotates the log; the follower keeps its descriptor of the old one
        if rng.random() < 0.5:
            follower.sync()
    follower.sync()
    _same_state(follower, writer)
    assert follower.position[0] > 1  # it followed the rotations (a reload only sheds slots of deleted notes)
    reloads = follower.reloads
    for i in range(3):  # idle while two compactions delete the logs it had not opened yet
        note = _note(100 + i, rng)
        writer.upsert([note], embedder.encode([note]))
        writer.compact()
    follower.sync()
    assert follower.reloads == reloads + 1
    _same_state(follower, writer)
    follower.close()


def test_follower_waits_for_a_half_written_record_and_refuses_a_corrupt_one(writer, index_dir, embedder):
    follower = WalFollower.open(index_dir)
    note = Note(note_id="half", title="lager hops", content="")
    vector = embedder.encode([note])
    record = encode_record({"op": "upsert", "notes": [note.to_dict(extra=())],
                            "vectors": base64.b64encode(vector.tobytes()).decode("ascii")})
    with open(writer._wal.path, "ab", buffering=0) as log:  # as the writer would, one part at a time
        log.write(record[:30])
        assert follower.sync() == 0 and follower.get("half") is None
        log.write(record[30:])
        assert follower.sync() == 1 and follower.get("half") == note
        log.write(b"00000002 00000000 {}\n")  # a complete line whose CRC is wrong
    with pytest.raises(WalCorruptError, match="corrupt record at byte"):
        follower.sync()
    follower.close()


def test_follower_keeps_a_related_cache_exact_through_its_apply_path(writer, index_dir, embedder):
    follower = WalFollower.open(index_dir)
    ids = sorted(n.note_id for n in follower.search_titles("", 100))
    cache = RelatedCache.build(ids, follower.vectors(ids), k=4)
    follower.on_upsert, follower.on_delete = cache.upsert, cache.delete
    rng = random.Random(1)
    for step in range(25):
        if rng.random() < 0.3:
            writer.delete(rng.choice([n.note_id for n in writer.search_titles("", 100)]))
        else:
            note = _note(step % 9, rng)
            writer.upsert([note], embedder.encode([note]))
        if step % 3 == 0:
            follower.sync()
    follower.sync()
    ids = sorted(n.note_id for n in writer.search_titles("", 100))
    exact = RelatedCache.build(ids, writer.vectors(ids), k=4)
    for note_id in ids:  # the same lists; scores agree up to float32 summation order (build: matmul blocks)
        got, want = cache.lookup(note_id, 4), exact.lookup(note_id, 4)
        assert [i for i, _ in got] == [i for i, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5)
    follower.close()


def test_follower_reloads_after_the_writer_rebuilt_an_hnsw_graph(tmp_path, embedder, notes):
    root = LocalNoteIndex.create(tmp_path / "hnsw", notes, embedder.embed(notes),
                                 index=IndexConfig(kind="hnsw", max_dead_fraction=0.1))
    writer = LocalNoteIndex.open(root, compact_every=0)
    follower = WalFollower.open(root)
    for note in notes[:6]:
        writer.delete(note.note_id)
    follower.sync()
    assert follower._index.needs_compaction  # its own graph holds the same tombstones as the writer's
    writer.compact()  # rebuilds the writer's graph without them
    follower.sync()
    assert follower.reloads == 1 and not follower._index.needs_compaction
    _same_state(follower, writer)
    follower.close()
    writer.close()


# --- the processes ----------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _readers(proc: subprocess.Popen) -> set[int]:
    """The live reader processes (uvicorn spawns them; a killed one is a zombie until the supervisor reaps it)."""
    pids = set()
    for child in psutil.Process(proc.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.Error:  # ended meanwhile
            continue
    return pids


def _wait(proc: subprocess.Popen, predicate, what: str) -> None:
    """Wait for `predicate` while the server lives: no wall-clock limit of its own (spawning readers that import
    torch takes seconds idle and minutes on one loaded core); pytest's per-test timeout still bounds a hang."""
    while proc.poll() is None:
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server exited with {proc.returncode} while waiting for {what}")


def _exact_related(vectors: dict[str, np.ndarray], note_id: str, k: int) -> list[str]:
    ids = sorted(i for i in vectors if i != note_id)
    scores = np.stack([vectors[i] for i in ids]) @ vectors[note_id]
    return [ids[j] for j in sorted(range(len(ids)), key=lambda j: (-scores[j], ids[j]))[:k]]


def test_workers_read_your_writes_compaction_reader_restart_and_shutdown(index_dir, notes):
    embedder = HashingEmbedder(dim=32)
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    # 2 readers, compaction every 5 records (the readers follow rotations); no related cache (its torch import
    # would double each reader's start-up; the cache's apply path is tested above)
    proc = subprocess.Popen([sys.executable, str(SERVER), str(index_dir), str(port), "5", "2"], env=env)
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(timeout=120)  # a request may wait for a CPU on a loaded machine
    try:
        _wait(proc, lambda: len(_readers(proc)) == 2 and http.get(url + "/health").status_code == 200, "the server")
        assert http.get(url + "/openapi.json").json()["paths"]["/notes"]["post"]  # readers document writes too
        vectors = {n.note_id: v for n, v in zip(notes, embedder.embed(notes))}
        rng = random.Random(2)
        for i in range(16):  # every request on a new connection: the kernel hands it to either reader
            note = _note(i, rng)
            body = {"notes": [{"note_id": note.note_id, "title": note.title, "content": note.content}]}
            assert http.post(url + "/notes", json=body).json()["ids"] == [note.note_id]
            vectors[note.note_id] = embedder.embed([note])[0]
            quoted = note.note_id.replace("/", "%2F")
            assert http.get(f"{url}/notes/{quoted}").json()["title"] == note.title  # read-your-writes
            if i % 4 == 3:
                gone = rng.choice(sorted(vectors))
                assert http.delete(f"{url}/notes/{gone.replace('/', '%2F')}").status_code == 200
                del vectors[gone]
                assert http.get(f"{url}/notes/{gone.replace('/', '%2F')}").status_code == 404
            for probe in (note.note_id, rng.choice(sorted(vectors))):
                got = http.get(f"{url}/notes/{probe.replace('/', '%2F')}/related", params={"k": 5}).json()
                assert [item["note_id"] for item in got["items"]] == _exact_related(vectors, probe, 5)
        assert not (index_dir / "snap-000000").exists()  # the writer compacted while the readers followed
        assert http.get(url + "/health").json()["notes"] == len(vectors)

        victim = min(_readers(proc))
        os.kill(victim, signal.SIGKILL)  # uvicorn's supervisor replaces it
        _wait(proc, lambda: len(_readers(proc)) == 2 and victim not in _readers(proc), "a replacement reader")
        for _ in range(8):
            probe = rng.choice(sorted(vectors))
            got = http.get(f"{url}/notes/{probe.replace('/', '%2F')}/related", params={"k": 5}).json()
            assert [item["note_id"] for item in got["items"]] == _exact_related(vectors, probe, 5)
        readers = _readers(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        http.close()
        code = proc.wait(timeout=120)
    assert code == 0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in readers)
    reopened = LocalNoteIndex.open(index_dir)  # the writer's clean shutdown released the folder
    assert sorted(n.note_id for n in reopened.search_titles("", 100)) == sorted(vectors)
    reopened.close()


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "0"], "greater than or equal to 1"),
    (["--workers", "two"], "valid integer"),
    (["--workers", "2", "--backend", "milvus"], "needs --backend faiss"),
])
def test_bad_workers_values_are_command_line_errors(tmp_path, args, message):
    from notellm.cli import build_app

    result = CliRunner().invoke(build_app(), ["serve", "--model", str(tmp_path), *args])
    assert result.exit_code == 2
    assert "--workers" in result.output and message in " ".join(result.output.split())
