"""The precomputed related lists equal a brute-force exact search after any sequence of writes and deletes.

Vectors are small integers, so every inner product is exact in float32 and ties are frequent: the lists must
match the brute force's (score descending, note id ascending) order exactly, not just approximately.

    PYTHONPATH=. python -m pytest tests/serve/test_serve_related_cache.py -q
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notellm.serve.related_cache import RelatedCache


def brute_force(store: dict[str, np.ndarray], note_id: str, k: int) -> list[tuple[str, float]]:
    query = store[note_id]
    scored = [(float(vector @ query), other) for other, vector in store.items() if other != note_id]
    return [(other, score) for score, other in sorted(scored, key=lambda t: (-t[0], t[1]))[:k]]


def assert_exact(cache: RelatedCache, store: dict[str, np.ndarray]) -> None:
    assert len(cache) == len(store)
    for note_id in store:
        assert cache.lookup(note_id, cache.k) == brute_force(store, note_id, cache.k), note_id
        assert cache.lookup(note_id, 1) == brute_force(store, note_id, 1)


def random_vector(rng: random.Random, dim: int) -> np.ndarray:
    return np.asarray([rng.randint(-2, 2) for _ in range(dim)], dtype=np.float32)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 3, 40])  # 40: larger than the corpus ever gets
def test_lists_stay_exact_under_random_writes_and_deletes(seed, k):
    rng = random.Random(seed)
    dim = 3
    store = {f"n{i}": random_vector(rng, dim) for i in range(rng.randint(0, 12))}
    cache = RelatedCache.build(list(store), np.stack(list(store.values())) if store else np.zeros((0, dim)), k)
    assert_exact(cache, store)
    for step in range(60):
        action = rng.random()
        if action < 0.45 or not store:  # a new note, or a batch of them
            batch = {f"new{step}-{j}": random_vector(rng, dim) for j in range(rng.randint(1, 3))}
            cache.upsert(list(batch), np.stack(list(batch.values())))
            store.update(batch)
        elif action < 0.7:  # an existing note changes
            note_id = rng.choice(sorted(store))
            store[note_id] = random_vector(rng, dim)
            cache.upsert([note_id], store[note_id][None])
        else:
            note_id = rng.choice(sorted(store))
            del store[note_id]
            assert cache.delete(note_id)
        assert_exact(cache, store)
    assert not cache.delete("never-there")
    assert cache.lookup("never-there", 1) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "del"]), st.integers(0, 9),
                          st.lists(st.integers(-1, 1), min_size=2, max_size=2)), max_size=30),
       st.integers(1, 5))
def test_any_operation_sequence_matches_brute_force(ops, k):
    cache = RelatedCache.build([], np.zeros((0, 2), dtype=np.float32), k)
    store: dict[str, np.ndarray] = {}
    for op, i, values in ops:
        note_id = f"n{i}"
        if op == "put":
            store[note_id] = np.asarray(values, dtype=np.float32)
            cache.upsert([note_id], store[note_id][None])
        else:
            assert cache.delete(note_id) == (store.pop(note_id, None) is not None)
    assert_exact(cache, store)


def test_build_matches_brute_force_with_ties_and_float_vectors():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors[10] = vectors[11] = vectors[12]  # three identical notes: exact ties, broken by id
    ids = [f"id{i:03d}" for i in range(300)]
    cache = RelatedCache.build(ids, vectors, 5)
    store = dict(zip(ids, vectors))
    for note_id in ("id010", "id011", "id012", "id100"):
        got, want = cache.lookup(note_id, 5), brute_force(store, note_id, 5)
        assert [i for i, _ in got] == [i for i, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
    assert [i for i, _ in cache.lookup("id010", 2)] == ["id011", "id012"]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="k must be >= 1"):
        RelatedCache(0, 4)
    with pytest.raises(ValueError, match="duplicate"):
        RelatedCache.build(["a", "a"], np.zeros((2, 4)), 2)
    with pytest.raises(ValueError, match="holds 2 neighbours"):
        RelatedCache.build(["a", "b"], np.eye(2), 2).lookup("a", 3)


def test_service_answers_from_the_cache_and_keeps_it_exact_through_the_api(index_dir, embedder):
    """POST/DELETE through the API keep the cached lists equal to an exact search over the stored vectors."""
    from fastapi.testclient import TestClient

    from notellm.serve.app import create_app
    from notellm.serve.config import ServeConfig
    from notellm.serve.store import LocalNoteIndex

    index = LocalNoteIndex.open(index_dir, compact_every=0)
    try:
        app = create_app(index, embedder, ServeConfig(related_cache_k=30), model_name="hashing")
        with TestClient(app, base_url="http://localhost") as client:  # a loopback Host (security.py)
            cache = client.app.state.service.cache
            assert cache is not None and len(cache) == len(index) == 24
            new = {"note_id": "espresso-new", "title": "coffee espresso grinder", "content": "crema roast beans",
                   "hashtags": ["coffee"], "category": "coffee"}
            assert client.post("/notes", json={"notes": [new]}).status_code == 200
            assert client.post("/notes", json={"notes": [dict(new, note_id="beer-1", title="espresso")]}).is_success
            assert client.delete("/notes/coffee-2").status_code == 200
            ids = [n.note_id for n in index.search_titles("", 100)]
            store = dict(zip(ids, index.vectors(ids)))
            for note_id in ids:
                body = client.get(f"/notes/{note_id}/related", params={"k": 5}).json()
                want = brute_force(store, note_id, 5)
                assert [i["note_id"] for i in body["items"]] == [i for i, _ in want]
                assert [i["score"] for i in body["items"]] == pytest.approx([s for _, s in want], abs=1e-5)
            # diversified requests take their candidates (5 x k) from the cache too
            body = client.get("/notes/beer-3/related", params={"k": 4, "diversify": "ssd_star"}).json()
            assert body["candidates"] == 20 and 1 <= len(body["items"]) <= 4
            assert client.get("/notes/coffee-2/related").status_code == 404
    finally:
        index.close()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_lists_from_an_index_search_follow_it_and_writes_keep_them_exact(kind):
    """`from_neighbours` takes each list from the index's own search (here, at this size, HNSW finds the true
    neighbours too), in (score, id) order; later writes and deletes keep every list equal to brute force."""
    from notellm.retrieval.index import IndexConfig, VectorIndex
    from notellm.retrieval.vectors import NoteVectors

    rng = random.Random(kind)
    store = {f"n{i:03d}": random_vector(rng, 6) for i in range(80)}
    ids = list(store)
    index = VectorIndex.build(NoteVectors(ids, np.stack([store[i] for i in ids])), IndexConfig(kind=kind))
    table_ids, scores, positions = index.neighbour_table(8)
    cache = RelatedCache.from_neighbours(table_ids, index.vectors(table_ids), 5, scores, positions)
    for note_id in ids:  # ties at the 8th place may differ from brute force; the first 5 of 8 are settled
        want = brute_force(store, note_id, 5)
        assert [s for _, s in cache.lookup(note_id, 5)] == [s for _, s in want]
    for step in range(60):
        note_id = f"n{rng.randrange(100):03d}"
        if rng.random() < 0.4 and note_id in store:
            assert cache.delete(note_id)
            del store[note_id]
        else:
            store[note_id] = random_vector(rng, 6)
            cache.upsert([note_id], store[note_id][None, :])
    refreshed = [n for n in store if cache.lookup(n, 5) == brute_force(store, n, 5)]
    assert len(refreshed) == len(store)
