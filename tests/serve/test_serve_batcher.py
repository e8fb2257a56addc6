"""Micro-batching: concurrent requests share model calls, results go back to the right caller.

    PYTHONPATH=. python -m pytest tests/serve/test_serve_batcher.py -q
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from serve_testkit import HashingEmbedder, planted_notes

from notellm.serve.batcher import EmbedBatcher


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_merged_and_fanned_back():
    embedder, notes = HashingEmbedder(), planted_notes()[:20]
    sizes: list[int] = []

    async def main():
        batcher = EmbedBatcher(embedder.embed, max_batch=8, max_wait_ms=200)
        batcher.on_batch = sizes.append
        await batcher.start()
        results = await asyncio.gather(*(batcher.embed([n]) for n in notes))
        await batcher.stop()
        return results, batcher.calls

    results, calls = _run(main())
    assert calls == 3 and sizes == [8, 8, 4]  # 20 single-note requests, batches of at most 8
    for note, got in zip(notes, results):
        np.testing.assert_array_equal(got, embedder.embed_one(note)[None, :])


def test_request_larger_than_the_batch_runs_alone_and_the_next_waits_its_turn():
    embedder, notes = HashingEmbedder(), planted_notes()

    async def main():
        batcher = EmbedBatcher(embedder.embed, max_batch=4, max_wait_ms=50)
        sizes: list[int] = []
        batcher.on_batch = sizes.append
        await batcher.start()
        big, small = await asyncio.gather(batcher.embed(notes[:10]), batcher.embed(notes[10:11]))
        await batcher.stop()
        return big, small, sizes

    big, small, sizes = _run(main())
    assert big.shape == (10, 32) and small.shape == (1, 32) and sizes == [10, 1]
    np.testing.assert_array_equal(small[0], embedder.embed_one(notes[10]))


def test_a_failing_model_call_fails_every_request_of_the_batch():
    def broken(_notes):
        raise RuntimeError("model exploded")

    async def main():
        batcher = EmbedBatcher(broken, max_batch=8, max_wait_ms=50)
        await batcher.start()
        results = await asyncio.gather(*(batcher.embed(planted_notes()[i : i + 1]) for i in range(3)),
                                       return_exceptions=True)
        await batcher.stop()
        return results

    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in _run(main()))


def test_embed_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="start"):
        _run(EmbedBatcher(HashingEmbedder().embed).embed(planted_notes()[:1]))
