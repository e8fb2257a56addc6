"""`ModelGate`: one model call at a time, with embedding (the write path) ahead of generation.

Torch on CPU gains nothing from overlapping calls, and the Hugging Face fast tokenizer is not safe to call from
two threads at once, so the service runs one model call at a time. Generation used to hold that lock for a whole
request (up to 256 notes), so every POST /notes and /embed waited behind it. Now generation runs in small chunks,
each taking the gate only when no embedding is waiting: a write waits for at most one chunk. Hand-written: the
standard library has no writer-preferring lock; this is a condition variable and two counters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ModelGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self.embeds_waiting = 0  # read by tests to know a write is queued

    @contextmanager
    def embedding(self) -> Iterator[None]:
        """Hold the model for an embedding call; goes before any waiting generation chunk."""
        with self._cond:
            self.embeds_waiting += 1
            try:
                self._cond.wait_for(lambda: not self._busy)
            finally:
                self.embeds_waiting -= 1
            self._busy = True
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def generation_chunk(self) -> Iterator[None]:
        """Hold the model for one generation chunk, once no embedding is running or waiting."""
        with self._cond:
            self._cond.wait_for(lambda: not self._busy and self.embeds_waiting == 0)
            self._busy = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()
