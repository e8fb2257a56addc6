"""VectorIndex (flat / HNSW / IVF) against brute-force inner product, tie-aware; mutation and persistence.

Run: PYTHONPATH=. python -m pytest tests/retrieval -q
"""

from __future__ import annotations

import numpy as np
import pytest

from notellm.data.schema import Note
from notellm.retrieval.encode import encode_notes
from notellm.retrieval.exact import l2_normalize, top_k
from notellm.retrieval.index import IndexConfig, VectorIndex
from notellm.retrieval.vectors import NoteVectors

KINDS = ["flat", "hnsw", "ivf"]


def random_vectors(n: int = 400, d: int = 16, seed: int = 0) -> NoteVectors:
    rng = np.random.default_rng(seed)
    return NoteVectors([f"n{i}" for i in range(n)], l2_normalize(rng.standard_normal((n, d))))


def check_against_exact(scores, labels, vectors: NoteVectors, queries, k, min_recall: float) -> None:
    """Tie-aware check (faiss contrib idea): a returned score must equal the exact score of that label, and the
    set of returned labels must match the exact top-k up to items tied with the k-th exact score."""
    exact = queries @ vectors.matrix.T  # (nq, n)
    found = 0
    for i in range(len(queries)):
        kth = np.sort(exact[i])[::-1][k - 1]
        must = set(np.flatnonzero(exact[i] > kth + 1e-6).tolist())
        may = set(np.flatnonzero(exact[i] >= kth - 1e-6).tolist())
        got = set(labels[i][labels[i] >= 0].tolist())
        np.testing.assert_allclose(scores[i][labels[i] >= 0], exact[i][labels[i][labels[i] >= 0]], atol=1e-5)
        found += len(got & may)
        if min_recall == 1.0:
            assert must <= got and got <= may
    assert found / (len(queries) * k) >= min_recall


@pytest.mark.parametrize("kind", KINDS)
def test_search_matches_brute_force(kind):
    vectors = random_vectors()
    index = VectorIndex.build(vectors, IndexConfig(kind=kind, ivf_nlist=8, ivf_nprobe=8))
    queries = vectors.matrix[:50]
    scores, labels = index.search(queries, 10)
    assert scores.shape == labels.shape == (50, 10)
    # labels are insertion rows here, so they index vectors directly
    check_against_exact(scores, labels, vectors, queries, 10, min_recall=1.0 if kind != "hnsw" else 0.95)


def test_ties_are_accepted_in_any_order():
    """Four identical vectors tie for the top: any 2 of them are a correct top-2."""
    m = np.array([[1, 0], [1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    vectors = NoteVectors([f"t{i}" for i in range(5)], m)
    scores, labels = VectorIndex.build(vectors, IndexConfig(kind="flat")).search(m[:1], 2)
    check_against_exact(scores, labels, vectors, m[:1], 2, min_recall=1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_slots_are_minus_one(kind):
    vectors = random_vectors(n=40)
    index = VectorIndex.build(vectors, IndexConfig(kind=kind, ivf_nlist=1))
    scores, labels = index.search(vectors.matrix[:2], 60)
    assert (labels[:, 40:] == -1).all() and np.isneginf(scores[:, 40:]).all()
    assert index.note_ids(labels)[0][-1] is None


@pytest.mark.parametrize("kind", KINDS)
def test_add_remove_similar(kind):
    vectors = random_vectors(n=100)
    index = VectorIndex.build(vectors, IndexConfig(kind=kind, ivf_nlist=2, ivf_nprobe=2))
    top = index.similar("n0", 5)
    assert len(top) == 5 and all(nid != "n0" for nid, _ in top)
    victim = top[0][0]
    assert index.remove([victim, "not-there"]) == 1
    assert len(index) == 99 and victim not in index
    assert victim not in [nid for nid, _ in index.similar("n0", 5)]
    # re-adding with a new vector equal to n0's makes it the nearest neighbour
    index.add([victim], index.vector("n0")[None, :])
    assert index.similar("n0", 1)[0][0] == victim
    assert len(index) == 100


def test_save_load_roundtrip(tmp_path):
    vectors = random_vectors(n=50)
    index = VectorIndex.build(vectors, IndexConfig(kind="flat"))
    index.remove(["n3"])
    index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx")
    a = index.search(vectors.matrix[:5], 7)
    b = loaded.search(vectors.matrix[:5], 7)
    np.testing.assert_array_equal(a[1], b[1])
    assert loaded.note_ids(b[1]) == index.note_ids(a[1])
    loaded.add(["new"], vectors.matrix[3:4])
    assert loaded.similar("n2", 50)[0][0] != "n3"
    with pytest.raises(FileNotFoundError, match="missing labels.json"):
        VectorIndex.load(tmp_path / "nothing")


def test_vectors_roundtrip_and_errors(tmp_path):
    vectors = random_vectors(n=5, d=3)
    path = vectors.save(tmp_path / "v.npz")
    back = NoteVectors.load(path)
    assert back.ids == vectors.ids
    np.testing.assert_array_equal(back.matrix, vectors.matrix)
    assert back.subset(["n4", "n1"]).ids == ["n4", "n1"]
    with pytest.raises(ValueError, match="duplicate note id 'a'"):
        NoteVectors(["a", "a"], np.zeros((2, 2)))
    with pytest.raises(KeyError, match="'zz' has no embedding"):
        vectors.row("zz")
    with pytest.raises(FileNotFoundError, match="vectors file not found"):
        NoteVectors.load(tmp_path / "missing.npz")


class LengthEncoder:
    """Embeds a note as (len(title), 1): lets the test check that the order is restored after length sorting."""

    name = "length"

    def encode(self, notes):
        return np.array([[len(n.title), 1.0] for n in notes], dtype=np.float32)


def test_encode_notes_restores_order_and_normalises():
    notes = [Note(f"n{i}", "x" * L, "c" * L) for i, L in enumerate([5, 1, 9, 3])]
    vectors = encode_notes(LengthEncoder(), notes, chunk_size=2, progress=False)
    assert vectors.ids == ["n0", "n1", "n2", "n3"]
    np.testing.assert_allclose(np.linalg.norm(vectors.matrix, axis=1), 1.0, atol=1e-6)
    expected = l2_normalize(np.array([[5, 1], [1, 1], [9, 1], [3, 1]], dtype=np.float32))
    np.testing.assert_allclose(vectors.matrix, expected, atol=1e-6)


@pytest.mark.parametrize("n,k", [(5, 3), (200, 1), (200, 17), (200, 200), (200, 500), (70, 0)])
def test_top_k_is_a_stable_brute_force_sort(n, k):
    """Scores drawn from few values (many ties) and -inf exclusions: equal to a full stable argsort, row by row."""
    rng = np.random.default_rng(n + k)
    scores = rng.integers(0, 6, size=(4, n)).astype(np.float32)
    scores[:, ::7] = -np.inf
    got = top_k(scores, k)
    want = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(top_k(scores[1], k), want[1])


def test_l2_normalize_keeps_zero_rows_and_works_on_any_leading_axes():
    x = np.array([[[3.0, 4.0], [0.0, 0.0]]])
    np.testing.assert_allclose(l2_normalize(x, dtype=np.float64), [[[0.6, 0.8], [0.0, 0.0]]])
    assert l2_normalize(x).dtype == np.float32


def test_exact_index_equals_brute_force_with_ties_in_insertion_order():
    """The flat kind returns exactly the stable brute-force order: duplicated vectors come back by insertion."""
    rng = np.random.default_rng(3)
    base = l2_normalize(rng.standard_normal((30, 8)))
    vectors = NoteVectors([f"d{i}" for i in range(90)], np.concatenate([base, base, base]))  # every vector 3 times
    index = VectorIndex.build(vectors, IndexConfig(kind="flat"))
    scores, labels = index.search(vectors.matrix[:10], 12)
    want = np.argsort(-(vectors.matrix[:10] @ vectors.matrix.T), axis=1, kind="stable")[:, :12]
    np.testing.assert_array_equal(labels, want)
    index.remove(["d0"])
    assert index.similar("d30", 1)[0][0] == "d60"  # its copies d0 (removed), d30 (itself), d60


def test_exact_index_after_adds_removes_and_replacements_is_brute_force_in_insertion_order(tmp_path):
    """The contract a durable store relies on: after any mutation the exact kind answers what a stable sort over
    the live notes, in insertion order (a replaced note counts as newly inserted), answers; save/load keeps it."""
    rng = np.random.default_rng(5)
    pool = l2_normalize(rng.integers(-1, 2, size=(12, 3)).astype(np.float32))  # few distinct vectors: many ties
    index = VectorIndex(3, IndexConfig(kind="flat"))
    live: dict[str, np.ndarray] = {}
    for step in range(60):
        note = f"n{rng.integers(0, 25)}"
        if rng.random() < 0.3:
            index.remove([note])
            live.pop(note, None)
        else:
            vec = pool[rng.integers(0, len(pool))]
            index.add([note], vec[None, :])
            live.pop(note, None)
            live[note] = vec  # dicts keep insertion order: a replacement moves to the end
        if step % 20 == 19:
            index.save(tmp_path / "ix")
            index = VectorIndex.load(tmp_path / "ix")
        query = pool[rng.integers(0, len(pool))]
        scores, labels = index.search(query[None, :], 5)
        if not live:
            assert (labels == -1).all() and len(index) == 0
            continue
        ids, matrix = list(live), np.stack(list(live.values()))
        want = np.argsort(-(matrix @ query), kind="stable")[:5]
        assert [nid for nid in index.note_ids(labels)[0] if nid] == [ids[i] for i in want]
        np.testing.assert_allclose(scores[0][: len(want)], (matrix @ query)[want], atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_random_adds_removes_and_replacements_match_brute_force(kind, tmp_path):
    """Every kind after random writes: no removed note ever comes back, k live notes come back when there are k,
    scores are the true inner products, and the sets equal brute force (HNSW: removed notes stay in its graph as
    tombstones; the search filters them). Then compaction and a save/load round trip keep the answers."""
    rng = np.random.default_rng(11)
    pool = random_vectors(n=300, d=12, seed=12)
    index = VectorIndex.build(NoteVectors(pool.ids[:150], pool.matrix[:150]),
                              IndexConfig(kind=kind, ivf_nlist=4, ivf_nprobe=4, hnsw_ef_search=64))
    live = {i: pool.matrix[n] for n, i in enumerate(pool.ids[:150])}
    for step in range(400):
        note = f"n{rng.integers(0, 300)}"
        if rng.random() < 0.45:
            assert index.remove([note]) == (1 if live.pop(note, None) is not None else 0)
        else:
            vec = pool.matrix[rng.integers(0, 300)]
            index.add([note], vec[None, :])
            live[note] = vec
    assert len(index) == len(live) and index.dead > 0

    def check(ix: VectorIndex) -> None:
        matrix = np.stack(list(live.values()))
        queries = pool.matrix[:40]
        scores, labels = ix.search(queries, 10)
        exact = queries @ matrix.T  # (40, n_live)
        found = 0
        for q, (row_ids, row_scores) in enumerate(zip(ix.note_ids(labels), scores)):
            assert None not in row_ids and len(set(row_ids)) == 10 and set(row_ids) <= set(live)
            np.testing.assert_allclose(row_scores, [float(live[i] @ queries[q]) for i in row_ids], atol=1e-5)
            kth = np.sort(exact[q])[::-1][9]
            found += sum(float(live[i] @ queries[q]) >= kth - 1e-6 for i in row_ids)
        assert found / 400 >= (1.0 if kind != "hnsw" else 0.95)

    check(index)
    index.save(tmp_path / "ix")
    check(VectorIndex.load(tmp_path / "ix"))  # tombstones survive the round trip
    assert index.needs_compaction == (index.dead > 0.25 * (len(index) + index.dead))
    index.compact()
    assert index.dead == 0 and not index.needs_compaction
    check(index)
    index.add(["late"], pool.matrix[:1])
    assert index.similar("late", 1)[0][1] == pytest.approx(1.0, abs=1e-5)


def test_hnsw_search_returns_k_live_notes_when_most_are_tombstones():
    vectors = random_vectors(n=200, d=8, seed=4)
    index = VectorIndex.build(vectors, IndexConfig(kind="hnsw", hnsw_ef_search=16))
    index.remove(vectors.ids[:190])
    scores, labels = index.search(vectors.matrix[:5], 10)
    assert all(sorted(row) == sorted(vectors.ids[190:]) for row in index.note_ids(labels))
    scores, labels = index.search(vectors.matrix[:5], 15)  # only 10 live: the rest are empty slots
    assert (labels[:, 10:] == -1).all() and np.isneginf(scores[:, 10:]).all()


@pytest.mark.parametrize("kind", KINDS)
def test_neighbour_table_is_similar_for_every_note(kind):
    vectors = random_vectors(n=120, d=8, seed=9)
    index = VectorIndex.build(vectors, IndexConfig(kind=kind, ivf_nlist=2, ivf_nprobe=2))
    index.remove(["n5", "n6"])
    ids, scores, positions = index.neighbour_table(7, block=50)
    assert ids == index.ids and scores.shape == positions.shape == (118, 7)
    for row in range(0, 118, 13):
        assert [(ids[p], pytest.approx(s, abs=1e-6)) for p, s in zip(positions[row], scores[row])] == \
            index.similar(ids[row], 7)


def test_index_config_accepts_exact_and_refuses_bad_values():
    assert IndexConfig(kind="exact").kind == "flat"
    with pytest.raises(ValueError, match="auto\\|flat\\|exact\\|hnsw\\|ivf"):
        IndexConfig(kind="annoy")
    with pytest.raises(ValueError, match="max_dead_fraction"):
        IndexConfig(max_dead_fraction=0)
