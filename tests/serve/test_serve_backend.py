"""open_index: the factory the CLI uses, for both backends, and its errors.

    PYTHONPATH=. python -m pytest tests/serve/test_serve_backend.py -q
"""

from __future__ import annotations

import pytest

from notellm.serve.backend import open_index


def test_open_each_backend(index_dir, tmp_path):
    pytest.importorskip("milvus_lite", reason="milvus-lite (the embedded Milvus) is not installed")
    milvus_db = str(tmp_path / "factory.db")  # its own file: close() below stops that milvus-lite server
    remote = open_index("milvus", index_dir, milvus_uri=milvus_db, milvus_collection="factory")
    local = open_index("faiss", index_dir)  # after seeding: a served folder cannot seed (it is locked)
    assert (local.name, len(local), local.dim) == ("faiss", 24, 32)
    assert (remote.name, len(remote), remote.dim) == ("milvus", 24, 32)
    assert [h[0] for h in remote.search(local.vectors(["beer-2"])[0], 3)] == \
        [h[0] for h in local.search(local.vectors(["beer-2"])[0], 3)]
    remote.close()
    # the seeded collection is reused without an index folder, even when Milvus has released it (a restart)
    again = open_index("milvus", None, milvus_uri=milvus_db, milvus_collection="factory")
    again._client.release_collection("factory")
    again = open_index("milvus", None, milvus_uri=milvus_db, milvus_collection="factory")
    assert len(again) == 24 and again.search(local.vectors(["beer-2"])[0], 1)[0][0] == "beer-2"
    again._client.drop_collection("factory")
    local.close()


@pytest.mark.parametrize(("backend", "kwargs", "message"), [
    ("faiss", {}, "--index is required"),
    ("milvus", {}, "--milvus-uri is required"),
    ("annoy", {}, "unknown backend 'annoy'"),
])
def test_bad_choices(backend, kwargs, message):
    with pytest.raises(ValueError, match=message):
        open_index(backend, None, **kwargs)


def test_missing_collection_without_seed(milvus_db):
    with pytest.raises(ValueError, match="does not exist"):
        open_index("milvus", None, milvus_uri=milvus_db, milvus_collection="never_made")
