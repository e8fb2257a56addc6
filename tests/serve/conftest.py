"""Fixtures of the serving tests: a hashing test embedder, planted notes, an index folder, both backends."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))  # serve_testkit importable under any pytest import mode
from serve_testkit import HashingEmbedder, planted_notes  # noqa: E402

from notellm.serve.app import create_app  # noqa: E402
from notellm.serve.config import ServeConfig  # noqa: E402
from notellm.serve.store import LocalNoteIndex  # noqa: E402


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(dim=32)


@pytest.fixture
def notes():
    return planted_notes()


@pytest.fixture
def index_dir(tmp_path, embedder, notes):
    return LocalNoteIndex.create(tmp_path / "index", notes, embedder.embed(notes))


@pytest.fixture(scope="session")
def milvus_db(tmp_path_factory) -> str:
    """One milvus-lite database file for the session (its server process starts once); one collection per test."""
    pytest.importorskip("milvus_lite", reason="milvus-lite (the embedded Milvus) is not installed")
    return str(tmp_path_factory.mktemp("milvus") / "notes.db")


_collections = itertools.count()


@pytest.fixture(params=["faiss", "milvus"])
def backend(request, index_dir):
    if request.param == "faiss":
        index = LocalNoteIndex.open(index_dir, compact_every=0)
        yield index
        index.close()
        return
    from notellm.serve.milvus import MilvusNoteIndex

    name = f"notes_{next(_collections)}"
    index = MilvusNoteIndex.open(request.getfixturevalue("milvus_db"), name, seed_from=index_dir)
    yield index
    index._client.drop_collection(name)


@pytest.fixture
def serve_cfg() -> ServeConfig:
    return ServeConfig(max_k=50, max_notes_per_request=8, max_body_bytes=64 * 1024, embed_max_wait_ms=2.0)


@pytest.fixture
def client(backend, embedder, serve_cfg):
    app = create_app(backend, embedder, serve_cfg, model_name="hashing")
    with TestClient(app, base_url="http://localhost") as test_client:  # a loopback Host (security.py)
        yield test_client
