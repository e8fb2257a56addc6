"""Issue #13 case 8: a long /generate does not hold up POST /notes (writes go between generation chunks)."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient
from serve_testkit import HashingEmbedder

from notellm.serve.app import create_app
from notellm.serve.config import ServeConfig
from notellm.serve.store import LocalNoteIndex


class BlockingGenerator(HashingEmbedder):
    """Records the order of model calls; its first generation call blocks until the test releases it."""

    def __init__(self) -> None:
        super().__init__(dim=32)
        self.order: list[str] = []
        self.started, self.release = threading.Event(), threading.Event()

    def encode(self, notes):
        self.order.append("embed")
        return super().encode(notes)

    def generate_hashtags(self, notes, k=5, constrained=False, vocabulary=None):
        self.order.append("generate")
        if not self.started.is_set():
            self.started.set()
            assert self.release.wait(30)
        return super().generate_hashtags(notes, k, constrained, vocabulary)


def _wait_for(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_a_write_waits_for_one_generation_chunk_not_the_whole_request(index_dir):
    model = BlockingGenerator()
    index = LocalNoteIndex.open(index_dir, compact_every=0)
    cfg = ServeConfig(max_notes_per_request=16, generate_chunk_notes=2, embed_max_wait_ms=0)
    app = create_app(index, model, cfg)
    ids = [f"coffee-{i}" for i in range(8)]
    with TestClient(app, base_url="http://localhost") as client:
        generated = {}
        gen = threading.Thread(target=lambda: generated.update(
            client.post("/generate", json={"task": "hashtags", "note_ids": ids}).json()))
        gen.start()
        assert model.started.wait(20)  # the first chunk is running (and blocked)
        posted = {}
        post = threading.Thread(target=lambda: posted.update(
            status=client.post("/notes", json={"notes": [{"note_id": "w1", "title": "espresso"}]}).status_code))
        post.start()
        assert _wait_for(lambda: app.state.gate.embeds_waiting == 1)  # the write is queued behind chunk 1
        model.release.set()
        post.join(20)
        gen.join(20)
    index.close()
    assert posted["status"] == 200 and len(generated["results"]) == 8
    # the write ran right after the chunk it arrived in, not after all four chunks
    assert model.order[:3] == ["generate", "embed", "generate"] and model.order.count("generate") == 4
