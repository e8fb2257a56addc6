"""LocalNoteIndex: exact search, durability across reopen/crash, compaction, leftovers, concurrent readers.

    PYTHONPATH=. python -m pytest tests/serve/test_serve_store.py -q
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pandas as pd
import pytest

from notellm.data.schema import Note
from notellm.retrieval.index import IndexConfig, VectorIndex
from notellm.retrieval.vectors import NoteVectors
from notellm.serve.store import IndexFormatError, LocalNoteIndex, _write_snapshot
from notellm.serve.wal import encode_record


def _unit(rng, n, d):
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _notes(prefix, n):
    return [Note(note_id=f"{prefix}{i}", title=f"title {prefix}{i}", content="c", hashtags=("t",), category="x")
            for i in range(n)]


def _die(index: LocalNoteIndex) -> None:
    """What the kernel does when the process holding the index is killed: its files close, its lock goes."""
    index._wal.close()
    index._release_lock()


def test_search_matches_brute_force(tmp_path):
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 50, 16)
    notes = _notes("n", 50)
    index = LocalNoteIndex.open(LocalNoteIndex.create(tmp_path / "ix", notes, vectors))
    query = _unit(rng, 1, 16)[0]
    expected = np.argsort(-(vectors @ query), kind="stable")[:7]
    hits = index.search(query, 7)
    assert [h[0] for h in hits] == [f"n{i}" for i in expected]
    np.testing.assert_allclose([h[1] for h in hits], (vectors @ query)[expected], rtol=1e-5)
    assert len(index.search(query, 500)) == 50


def test_writes_survive_a_crash_without_close(tmp_path):
    rng = np.random.default_rng(1)
    root = LocalNoteIndex.create(tmp_path / "ix", _notes("n", 5), _unit(rng, 5, 8))
    index = LocalNoteIndex.open(root)
    new = _unit(rng, 2, 8)
    index.upsert(_notes("new", 2), new)
    index.upsert([Note(note_id="n0", title="renamed", content="", extra={"url": "https://x.org/q/0"})], new[:1])
    assert index.delete("n1") and not index.delete("n1")
    _die(index)  # no close(): the process "dies" here; a second process opens the folder
    again = LocalNoteIndex.open(root)
    assert len(again) == 6
    assert again.get("n1") is None and again.get("n0").title == "renamed"
    assert again.get("n0").extra == {"url": "https://x.org/q/0"}
    again.compact()
    np.testing.assert_array_equal(again.vectors(["new1", "n0"]), np.stack([new[1], new[0]]))
    _die(again)
    assert LocalNoteIndex.open(root).get("n0").extra == {"url": "https://x.org/q/0"}  # through the snapshot too


def test_torn_tail_record_is_dropped_on_reopen(tmp_path):
    rng = np.random.default_rng(2)
    root = LocalNoteIndex.create(tmp_path / "ix", _notes("n", 3), _unit(rng, 3, 8))
    index = LocalNoteIndex.open(root)
    index.upsert(_notes("ok", 1), _unit(rng, 1, 8))
    wal = index._wal.path
    torn = encode_record({"op": "upsert", "notes": [{"note_id": "lost"}], "vectors": ""})
    with open(wal, "ab") as handle:
        handle.write(torn[: len(torn) // 2])  # a crash in the middle of writing an unacknowledged record
    _die(index)
    again = LocalNoteIndex.open(root)
    assert again.get("ok0") is not None and again.get("lost") is None and len(again) == 4


def test_compaction_folds_the_log_and_reopens_identically(tmp_path):
    rng = np.random.default_rng(3)
    root = LocalNoteIndex.create(tmp_path / "ix", _notes("n", 4), _unit(rng, 4, 8))
    index = LocalNoteIndex.open(root, compact_every=3)
    for i in range(7):
        index.upsert(_notes(f"w{i}-", 1), _unit(rng, 1, 8))
        if index._compactor is not None:
            index._compactor.join()
    index.delete("n2")
    expected = {nid: index.vectors([nid])[0] for nid in index._notes}
    manifest = json.loads((root / "index.json").read_text())
    assert manifest["covers_wal"] >= 2  # at least two compactions happened
    names = sorted(os.listdir(root))
    assert sum(n.startswith("snap-") for n in names) == 1 and not any(n.endswith(".tmp") for n in names)
    _die(index)
    again = LocalNoteIndex.open(root)
    assert set(again._notes) == set(expected)
    for nid, vec in expected.items():
        np.testing.assert_array_equal(again.vectors([nid])[0], vec)
    again.close()
    assert set(LocalNoteIndex.open(root)._notes) == set(expected)


def test_leftovers_of_a_crashed_compaction_are_ignored_and_removed(tmp_path):
    rng = np.random.default_rng(4)
    root = LocalNoteIndex.create(tmp_path / "ix", _notes("n", 3), _unit(rng, 3, 8))
    index = LocalNoteIndex.open(root)
    index.upsert(_notes("kept", 1), _unit(rng, 1, 8))
    # crash states: a half-written snapshot dir, a complete but unreferenced snapshot, a manifest temp file
    (root / "snap-000007.tmp").mkdir()
    _write_snapshot(root, 1, _notes("ghost", 1), VectorIndex.build(NoteVectors(["ghost0"], _unit(rng, 1, 8))).freeze())
    (root / "index.json.tmp").write_text("{")
    _die(index)
    again = LocalNoteIndex.open(root)
    assert again.get("kept0") is not None and again.get("ghost0") is None and len(again) == 4
    assert sorted(p for p in os.listdir(root) if "snap" in p or "tmp" in p) == ["snap-000000"]


def test_bad_inputs_are_refused(tmp_path):
    rng = np.random.default_rng(5)
    root = LocalNoteIndex.create(tmp_path / "ix", _notes("n", 3), _unit(rng, 3, 8))
    index = LocalNoteIndex.open(root)
    with pytest.raises(ValueError, match="shape"):
        index.upsert(_notes("a", 2), _unit(rng, 1, 8))
    with pytest.raises(ValueError, match="NaN"):
        index.upsert(_notes("a", 1), np.full((1, 8), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="twice"):
        index.upsert(_notes("a", 1) * 2, _unit(rng, 2, 8))
    with pytest.raises(FileExistsError):
        LocalNoteIndex.create(root, _notes("n", 1), _unit(rng, 1, 8))
    with pytest.raises(IndexFormatError, match="notellm index build"):
        LocalNoteIndex.open(tmp_path / "nothing")
    assert len(index) == 3


def test_readers_never_see_half_an_upsert(tmp_path):
    """Each write adds a twin pair (same vector) in ONE upsert; a reader must see both twins or neither."""
    rng = np.random.default_rng(6)
    index = LocalNoteIndex.open(LocalNoteIndex.create(tmp_path / "ix", _notes("n", 20), _unit(rng, 20, 16)))
    vectors = _unit(rng, 40, 16)
    failures: list[str] = []
    done = threading.Event()

    def writer():
        for i in range(40):
            pair = [Note(f"a{i}", "a", ""), Note(f"b{i}", "b", "")]
            index.upsert(pair, np.stack([vectors[i], vectors[i]]))
            if i % 3 == 0:
                index.upsert(pair, np.stack([vectors[i], vectors[i]]))  # replace both
        done.set()

    def reader():
        while not done.is_set():
            i = int(rng.integers(40))
            ids = {h[0] for h in index.search(vectors[i], 2)}
            if (f"a{i}" in ids) != (f"b{i}" in ids):
                failures.append(f"saw {ids} for pair {i}")

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures[:3]
    assert len(index) == 100


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_every_index_kind_stays_right_under_writes_compactions_and_reopens(tmp_path, kind):
    """The store on each VectorIndex kind: after random upserts/deletes (HNSW keeps tombstones), compactions that
    rebuild the index (max_dead_fraction small) and a crash + reopen, search equals brute force over the live
    notes (HNSW at this size: recall >= 0.95) and no deleted note is ever returned."""
    rng = np.random.default_rng(21)
    pool = _unit(rng, 120, 8)
    root = LocalNoteIndex.create(tmp_path / "ix", _notes("n", 60), pool[:60],
                                 index=IndexConfig(kind=kind, ivf_nlist=2, ivf_nprobe=2, max_dead_fraction=0.1))
    assert json.loads((root / "index.json").read_text())["index_kind"] == kind
    index = LocalNoteIndex.open(root, compact_every=25)
    live = {f"n{i}": pool[i] for i in range(60)}

    def check(store: LocalNoteIndex) -> None:
        assert store.index_kind == kind and len(store) == len(live)
        matrix = np.stack(list(live.values()))
        hits = found = 0
        for q in pool[:20]:
            got = store.search(q, 5)
            assert len(got) == 5 and {g[0] for g in got} <= set(live)
            kth = np.sort(matrix @ q)[::-1][4]
            hits += sum(float(live[g[0]] @ q) >= kth - 1e-6 for g in got)
            found += 5
        assert hits / found >= (0.95 if kind == "hnsw" else 1.0)

    for step in range(120):
        note = f"n{rng.integers(0, 120)}"
        if rng.random() < 0.4:
            assert index.delete(note) == (live.pop(note, None) is not None)
        else:
            row = int(rng.integers(0, 120))
            index.upsert([Note(note, f"t{row}", "")], pool[row : row + 1])
            live[note] = pool[row]
        if index._compactor is not None:
            index._compactor.join()
    check(index)
    manifest = json.loads((root / "index.json").read_text())
    assert manifest["version"] == 2 and manifest["covers_wal"] >= 3
    _die(index)
    again = LocalNoteIndex.open(root)
    check(again)
    again.close()


def test_a_version_1_folder_still_opens_as_an_exact_index_and_is_upgraded(tmp_path):
    """Folders of the previous release: snap-000000/vectors.npy + notes.parquet, manifest version 1."""
    rng = np.random.default_rng(8)
    vectors, notes = _unit(rng, 6, 8), _notes("n", 6)
    root = tmp_path / "v1"
    (root / "snap-000000").mkdir(parents=True)
    np.save(root / "snap-000000" / "vectors.npy", vectors)
    pd.DataFrame({"note_id": [n.note_id for n in notes], "title": [n.title for n in notes], "content": "c",
                  "hashtags": [["t"]] * 6, "category": "x", "url": ["https://x.org/1"] + [""] * 5}
                 ).to_parquet(root / "snap-000000" / "notes.parquet", index=False)
    (root / "index.json").write_text(json.dumps({"format": "notellm-index", "version": 1, "dim": 8,
                                                 "snapshot": "snap-000000", "covers_wal": 0, "notes": 6}))
    index = LocalNoteIndex.open(root)
    assert index.index_kind == "flat" and index.get("n0").url == "https://x.org/1" and index.get("n1").extra == {}
    expected = np.argsort(-(vectors @ vectors[2]), kind="stable")[:3]
    assert [h[0] for h in index.search(vectors[2], 3)] == [f"n{i}" for i in expected]
    index.upsert(_notes("new", 1), vectors[:1])
    index.close()  # compacts: the folder is now version 2
    assert json.loads((root / "index.json").read_text())["version"] == 2
    again = LocalNoteIndex.open(root)
    assert len(again) == 7 and again.get("n0").url == "https://x.org/1"
    again.close()


def test_an_unknown_folder_version_names_the_folder_and_the_fix(tmp_path):
    rng = np.random.default_rng(9)
    root = LocalNoteIndex.create(tmp_path / "ix", _notes("n", 2), _unit(rng, 2, 8))
    manifest = json.loads((root / "index.json").read_text())
    (root / "index.json").write_text(json.dumps(dict(manifest, version=99)))
    with pytest.raises(IndexFormatError, match=r"ix/index.json: format 'notellm-index' v99.*index build --out"):
        LocalNoteIndex.open(root)
