"""Issue #13 cases 6 and 7: one bad request fails only itself (4xx naming the field); every field is bounded."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from serve_testkit import HashingEmbedder, planted_notes

from notellm.serve.batcher import EmbedBatcher


def test_a_note_the_model_cannot_take_fails_only_its_own_request():
    embedder, notes = HashingEmbedder(), planted_notes()[:4]

    def picky(batch):
        if any(n.title == "poison" for n in batch):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return embedder.embed(batch)

    async def main():
        batcher = EmbedBatcher(picky, max_batch=8, max_wait_ms=100)
        await batcher.start()
        poison = notes[0].__class__(note_id="p", title="poison", content="")
        results = await asyncio.gather(batcher.embed(notes[:2]), batcher.embed([poison]), batcher.embed(notes[2:]),
                                       return_exceptions=True)
        await batcher.stop()
        return results

    good, bad, also_good = asyncio.run(main())
    assert isinstance(bad, UnicodeEncodeError)
    np.testing.assert_array_equal(good, embedder.embed(planted_notes()[:2]))
    np.testing.assert_array_equal(also_good, embedder.embed(planted_notes()[2:4]))


def _post_json(client, path: str, body: dict):
    """Post JSON with \\u escapes (how a client sends a lone surrogate; it has no UTF-8 form)."""
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def test_a_lone_surrogate_is_a_422_naming_the_field(client):
    for field in ("title", "content", "category"):
        response = _post_json(client, "/notes", {"notes": [{"note_id": "s1", "title": "ok", field: "a\ud800b"}]})
        assert response.status_code == 422, (field, response.text)
        assert field in response.text
    response = _post_json(client, "/embed", {"notes": [{"title": "x", "hashtags": ["\udfff"]}]})
    assert response.status_code == 422 and "hashtags" in response.text
    assert client.post("/notes", json={"notes": [{"note_id": "s1", "title": "fine"}]}).status_code == 200


def _post_note(client, **fields):
    return client.post("/notes", json={"notes": [{"note_id": "lim", "title": "t", **fields}]})


def test_every_note_field_is_bounded(client):
    assert _post_note(client, category="c" * 1025).status_code == 422
    assert _post_note(client, category="é" * 600).status_code == 422  # 1,200 bytes > the 1,024-byte column
    assert _post_note(client, hashtags=["h" * 101]).status_code == 422
    assert _post_note(client, category="c" * 1024, hashtags=["h" * 100]).status_code == 200
    for bad_id in ("   ", "a\u202eb", "a\u200fb", "tab\tid", "x" * 513, "é" * 300, "q/related"):
        response = client.post("/notes", json={"notes": [{"note_id": bad_id, "title": "t"}]})
        assert response.status_code == 422 and "note_id" in response.text, bad_id


def test_generate_lists_are_bounded(client):
    too_many = {"task": "hashtags", "note_ids": ["coffee-0"] * 1000}
    assert client.post("/generate", json=too_many).status_code in (413, 422)
    huge_id = {"task": "hashtags", "note_ids": ["x" * 10_000]}
    assert client.post("/generate", json=huge_id).status_code == 422
    vocabulary = {"task": "hashtags", "note_ids": ["coffee-0"], "vocabulary": [f"v{i}" for i in range(5000)]}
    assert client.post("/generate", json=vocabulary).status_code == 422
    long_item = {"task": "hashtags", "note_ids": ["coffee-0"], "vocabulary": ["v" * 101]}
    assert client.post("/generate", json=long_item).status_code == 422
    categories = {"task": "category", "note_ids": ["coffee-0"], "categories": ["c" * 1025]}
    assert client.post("/generate", json=categories).status_code == 422
    ok = {"task": "hashtags", "note_ids": ["coffee-0"], "vocabulary": ["espresso", "beans"]}
    assert client.post("/generate", json=ok).status_code == 200


def test_an_id_with_a_slash_is_reachable_and_related_is_not_shadowed(client):
    assert client.post("/notes", json={"notes": [{"note_id": "a/b", "title": "coffee espresso"}]}).status_code == 200
    assert client.get("/notes/a/b").json()["note_id"] == "a/b"
    assert client.get("/notes/a/b/related?k=2").json()["note_id"] == "a/b"
