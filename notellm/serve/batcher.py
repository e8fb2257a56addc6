"""Micro-batching: concurrent embedding requests are merged into one model call.

Each request puts its notes on an asyncio queue with a future. One worker task takes the first waiting request,
then keeps collecting for up to `max_wait_ms` or until `max_batch` notes are gathered, makes ONE model call in a
worker thread (so the event loop keeps serving reads), and fans the rows of the result back to each request's
future. A request larger than `max_batch` is embedded on its own in a single call. When a merged call fails,
each request of that batch is retried on its own, so only the request the model cannot take fails (with its own
exception); a failing model fails every request. Hand-written: a dozen lines of asyncio, no library needed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from notellm.data.schema import Note


class EmbedBatcher:
    """Collects (notes, future) requests and runs `embed_fn(all_notes) -> (N, d)` once per batch."""

    def __init__(self, embed_fn: Callable[[list[Note]], np.ndarray], max_batch: int = 32,
                 max_wait_ms: float = 5.0) -> None:
        self.embed_fn, self.max_batch, self.max_wait = embed_fn, max_batch, max_wait_ms / 1000.0
        self._queue: asyncio.Queue[tuple[list[Note], asyncio.Future]] | None = None
        self._worker: asyncio.Task | None = None
        self.calls = 0  # model calls made (for metrics and tests)
        self.on_batch: Callable[[int], None] | None = None  # called with each batch's note count

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="notellm-embed-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None

    async def embed(self, notes: list[Note]) -> np.ndarray:
        """Embeddings of `notes` (len(notes), d), computed together with whatever else is waiting."""
        if self._queue is None:
            raise RuntimeError("EmbedBatcher.start() was not called")
        if not notes:
            raise ValueError("embed: no notes")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((notes, future))
        return await future

    async def _run(self) -> None:
        carry: tuple[list[Note], asyncio.Future] | None = None  # a request that did not fit the previous batch
        while True:
            first = carry if carry is not None else await self._queue.get()
            carry = None
            batch, size = [first], len(first[0])
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch:
                try:
                    if self._queue.empty():
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    else:
                        item = self._queue.get_nowait()
                except TimeoutError:
                    break
                if size + len(item[0]) > self.max_batch:  # would overflow: it opens the next batch instead
                    carry = item
                    break
                batch.append(item)
                size += len(item[0])
            await self._embed_batch(batch)

    async def _embed_batch(self, batch: list[tuple[list[Note], asyncio.Future]]) -> None:
        notes = [note for request, _ in batch for note in request]
        try:
            matrix = await asyncio.to_thread(self.embed_fn, notes)  # (N, d)
        except Exception as exc:  # noqa: BLE001 - isolated below, or forwarded to the one waiting request
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            # One request's notes may be what the model cannot take: retry each request on its own, so a bad
            # request fails only itself and its neighbours still get their rows (issue #13, case 6).
            for item in batch:
                await self._embed_batch([item])
            return
        self.calls += 1
        if self.on_batch is not None:
            self.on_batch(len(notes))
        start = 0
        for request, future in batch:
            if not future.done():
                future.set_result(matrix[start : start + len(request)])
            start += len(request)
