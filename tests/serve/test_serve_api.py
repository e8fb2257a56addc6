"""The HTTP API, run once per backend (local FAISS store and embedded Milvus) through the same tests.

    PYTHONPATH=. python -m pytest tests/serve/test_serve_api.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

NEW = {"note_id": "new-1", "title": "Dialing in a new espresso grinder", "content": "espresso grinder crema roast",
       "hashtags": ["coffee"], "category": "coffee"}


def test_source_urls_are_kept_and_checked(client):
    note = dict(NEW, note_id="src", url="https://coffee.stackexchange.com/q/7")
    assert client.post("/notes", json={"notes": [note]}).status_code == 200
    assert client.get("/notes/src").json()["url"] == "https://coffee.stackexchange.com/q/7"
    found = client.get("/notes", params={"q": "a new espresso"}).json()["items"]
    assert [(n["note_id"], n["url"]) for n in found] == [("src", "https://coffee.stackexchange.com/q/7")]
    bad = client.post("/notes", json={"notes": [dict(note, url="javascript:alert(1)")]})
    assert bad.status_code == 422 and "url" in bad.text
    assert client.get("/notes/coffee-0").json()["url"] == ""


def test_health_and_get(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["notes"] == 24 and health["dim"] == 32 and health["can_generate"]
    note = client.get("/notes/coffee-0").json()
    assert note["title"].startswith("coffee espresso") and note["hashtags"] == ["coffee", "roast"]
    assert client.get("/notes/nope").status_code == 404
    assert client.get("/notes/nope").json() == {"detail": "unknown note id 'nope'"}


def test_related_follows_the_planted_topics(client):
    for topic in ("coffee", "beer", "quantum"):
        body = client.get(f"/notes/{topic}-3/related", params={"k": 5}).json()
        ids = [item["note_id"] for item in body["items"]]
        assert len(ids) == 5 and f"{topic}-3" not in ids
        assert all(i.startswith(topic) for i in ids), ids
        scores = [item["score"] for item in body["items"]]
        assert scores == sorted(scores, reverse=True)
        assert [item["rank"] for item in body["items"]] == [1, 2, 3, 4, 5]
        assert body["items"][0]["category"] == topic


@pytest.mark.parametrize("method", ["ssd", "ssd_star", "dpp", "mmr"])
def test_diversified_related_is_a_selection_of_the_candidates(client, method):
    plain = client.get("/notes/coffee-1/related", params={"k": 23}).json()["items"]
    body = client.get("/notes/coffee-1/related", params={"k": 4, "diversify": method}).json()
    assert body["diversify"] == method and body["candidates"] == 20
    ids = [item["note_id"] for item in body["items"]]
    assert 1 <= len(ids) <= 4 and len(set(ids)) == len(ids)
    score_of = {item["note_id"]: item["score"] for item in plain}
    for item in body["items"]:
        assert item["score"] == pytest.approx(score_of[item["note_id"]], abs=1e-5)


def test_posted_note_is_searchable_at_once_then_updated_then_deleted(client):
    response = client.post("/notes", json={"notes": [NEW]})
    assert response.status_code == 200, response.text
    assert response.json() == {"ids": ["new-1"], "notes_total": 25}
    related = [i["note_id"] for i in client.get("/notes/new-1/related", params={"k": 3}).json()["items"]]
    assert all(i.startswith("coffee") for i in related)
    back = [i["note_id"] for i in client.get("/notes/coffee-0/related", params={"k": 23}).json()["items"]]
    assert "new-1" in back
    assert [n["note_id"] for n in client.get("/notes", params={"q": "A NEW ESPRESSO"}).json()["items"]] == ["new-1"]
    updated = dict(NEW, title="Brewing a stout with lager yeast", content="stout lager yeast hops")
    assert client.post("/notes", json={"notes": [updated]}).json()["notes_total"] == 25
    assert client.get("/notes/new-1").json()["title"] == updated["title"]
    related = [i["note_id"] for i in client.get("/notes/new-1/related", params={"k": 3}).json()["items"]]
    assert all(i.startswith("beer") for i in related)
    assert client.delete("/notes/new-1").json() == {"deleted": "new-1", "notes_total": 24}
    assert client.get("/notes/new-1").status_code == 404
    assert client.delete("/notes/new-1").status_code == 404
    assert client.get("/notes/new-1/related").status_code == 404


def test_title_search(client):
    items = client.get("/notes", params={"q": "quantum qubit"}).json()["items"]
    assert items and all("quantum qubit" in i["title"] for i in items)
    assert len(client.get("/notes", params={"q": "", "limit": 5}).json()["items"]) == 5
    assert client.get("/notes", params={"q": '50% "off" _x\\'}).json()["items"] == []


def test_embed_matches_the_model(client, embedder, notes):
    body = client.post("/embed", json={"notes": [{"title": n.title, "content": n.content,
                                                  "hashtags": list(n.hashtags)} for n in notes[:3]]}).json()
    assert body["dim"] == 32
    got = np.asarray(body["embeddings"])
    np.testing.assert_allclose(got, embedder.embed(notes[:3]), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_generate_for_stored_and_posted_notes(client):
    body = client.post("/generate", json={"task": "hashtags", "note_ids": ["beer-0"], "k": 2}).json()
    assert body["results"] == [{"note_id": "beer-0", "hashtags": ["question", "lager"], "category": None}]
    body = client.post("/generate", json={"task": "category", "notes": [{"title": "stout time"}]}).json()
    assert body["results"][0]["category"] == "stout"
    body = client.post("/generate", json={"task": "category", "note_ids": ["beer-1"], "categories": ["x/y"]}).json()
    assert body["results"][0]["category"] == "x/y"
    body = client.post("/generate", json={"task": "hashtags", "note_ids": ["beer-0"], "k": 1,
                                          "vocabulary": ["stout", "lager"]}).json()
    assert body["results"][0]["hashtags"] == ["stout"]
    assert client.post("/generate", json={"task": "hashtags", "note_ids": ["nope"]}).status_code == 404
    assert client.post("/generate", json={"task": "hashtags"}).status_code == 422
    assert client.post("/generate", json={"task": "poem", "note_ids": ["beer-0"]}).status_code == 422


@pytest.mark.parametrize(
    ("method", "url", "payload", "status", "fragment"),
    [
        ("get", "/notes/coffee-0/related?k=51", None, 422, "k=51 exceeds the limit of 50"),
        ("get", "/notes/coffee-0/related?k=0", None, 422, "greater than or equal to 1"),
        ("get", "/notes/coffee-0/related?diversify=random", None, 422, "diversify"),
        ("post", "/notes", {"notes": []}, 422, "at least 1"),
        ("post", "/notes", {"notes": [{"title": "no id"}]}, 422, "note_id"),
        ("post", "/notes", {"notes": [dict(NEW, note_id="bad\nid")]}, 422, "control"),
        ("post", "/notes", {"notes": [dict(NEW, extra=1)]}, 422, "extra"),
        ("post", "/notes", {"notes": [NEW, NEW]}, 422, "appears twice"),
        ("post", "/notes", {"notes": [dict(NEW, note_id=f"m{i}") for i in range(9)]}, 413, "limit is 8"),
        ("post", "/notes", {"notes": [dict(NEW, title="t" * 1001)]}, 422, "notes[0].title"),
        ("post", "/notes", {"notes": [dict(NEW, content="c" * 70_000)]}, 413, "exceeds the limit"),
        ("post", "/embed", "not json", 422, "JSON"),
    ],
)
def test_bad_requests_get_clear_errors(client, method, url, payload, status, fragment):
    if isinstance(payload, str):
        response = client.post(url, content=payload, headers={"content-type": "application/json"})
    else:
        response = getattr(client, method)(url, **({"json": payload} if payload is not None else {}))
    assert response.status_code == status, response.text
    assert fragment in response.text
    assert client.get("/health").json()["notes"] == 24  # nothing was written


def test_metrics_count_requests_errors_and_latency(client):
    client.get("/notes/coffee-0/related")
    client.get("/notes/missing/related")
    client.post("/notes", json={"notes": [NEW]})
    text = client.get("/metrics").text
    assert 'notellm_requests_total{method="GET",route="/notes/{note_id}/related",status="200"} 1.0' in text
    assert 'notellm_request_errors_total{kind="client",method="GET",route="/notes/{note_id}/related"} 1.0' in text
    assert 'notellm_request_seconds_count{method="POST",route="/notes"} 1.0' in text
    assert "notellm_notes 25.0" in text
    assert "notellm_embed_batch_notes_count 1.0" in text


def test_the_web_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>notellm" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_ids_with_slashes_spaces_and_unicode_round_trip(client):
    note = dict(NEW, note_id="site/q 42/ü")
    assert client.post("/notes", json={"notes": [note]}).status_code == 200
    assert client.get("/notes/site%2Fq%2042%2F%C3%BC").json()["note_id"] == "site/q 42/ü"
    assert client.get("/notes/site/q 42/ü/related", params={"k": 2}).json()["note_id"] == "site/q 42/ü"
    assert client.delete("/notes/site/q 42/ü").json()["deleted"] == "site/q 42/ü"


def test_get_many_keeps_order_and_marks_unknown(backend):
    got = backend.get_many(["beer-2", "nope", "coffee-1"])
    assert [n.note_id if n else None for n in got] == ["beer-2", None, "coffee-1"]
    assert backend.get_many([]) == []
