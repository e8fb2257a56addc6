"""Case 1 of issue #13: note ids never become Milvus filter syntax (milvus-lite)."""

from __future__ import annotations

import pytest

from notellm.data.schema import Note

MALICIOUS = "zzz'] or note_id not in ['"
MALICIOUS_DQ = 'zzz"] or note_id not in ["'


@pytest.fixture
def milvus(request, index_dir):
    import itertools

    from notellm.serve.milvus import MilvusNoteIndex

    name = f"harden_{id(request)}_{next(itertools.count())}"
    index = MilvusNoteIndex.open(request.getfixturevalue("milvus_db"), name, seed_from=index_dir)
    yield index
    index._client.drop_collection(name)


@pytest.mark.parametrize("evil", [MALICIOUS, MALICIOUS_DQ, "a\\'] or true or note_id in ['"])
def test_injected_id_neither_deletes_nor_reads_other_notes(milvus, evil):
    before = len(milvus)
    assert milvus.get(evil) is None
    assert milvus.get_many([evil, "coffee-0"])[0] is None
    with pytest.raises(KeyError):
        milvus.vectors([evil])
    assert milvus.delete(evil) is False
    assert len(milvus) == before


def test_quote_in_a_legitimate_id_round_trips(milvus, embedder):
    note = Note(note_id="o'brien", title="o'brien's \"stout\"", content="x", hashtags=("beer",), category="beer")
    milvus.upsert([note], embedder.embed([note]))
    assert milvus.get("o'brien").title == note.title
    assert milvus.vectors(["o'brien"]).shape == (1, milvus.dim)
    before = len(milvus)
    assert milvus.delete("o'brien") is True
    assert len(milvus) == before - 1 and milvus.get("o'brien") is None


def test_http_delete_with_injected_id_is_404(client):
    before = client.get("/health").json()["notes"]
    response = client.delete("/notes/zzz'%5D%20or%20note_id%20not%20in%20%5B'")
    assert response.status_code == 404
    assert client.get("/health").json()["notes"] == before
    assert client.get("/notes/zzz'%5D%20or%20note_id%20not%20in%20%5B'").status_code == 404


@pytest.mark.parametrize("note_id", ['quote"double', "back\\slash", "咖啡-☕-😀", "percent%_under", "tab in	id"])
def test_any_text_id_round_trips_and_title_search_is_literal(milvus, embedder, note_id):
    note = Note(note_id=note_id, title=f"T {note_id} 100%", content="c", hashtags=(), category="")
    milvus.upsert([note], embedder.embed([note]))
    assert milvus.get(note_id).note_id == note_id
    assert [n.note_id for n in milvus.search_titles(note_id, 5)] == [note_id]
    assert milvus.search_titles("%", 50) and all("%" in n.title for n in milvus.search_titles("%", 50))
    assert milvus.delete(note_id) is True and milvus.get(note_id) is None
