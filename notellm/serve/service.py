"""`Service`: what every route needs (index, model, limits, metrics, batcher, related cache), and its dependency.

`create_app` builds one `Service` and stores it on `app.state.service`; routes receive it through
`Depends(service)`, so a router module never closes over app-building code and new routes (or a test) can be
written against it alone. Kept free of FastAPI routing so it is cheap to import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from notellm.data.schema import URL, Note
from notellm.retrieval.encode import Encoder
from notellm.serve.batcher import EmbedBatcher
from notellm.serve.config import ServeConfig
from notellm.serve.gate import ModelGate
from notellm.serve.metrics import ServiceMetrics
from notellm.serve.protocol import NoteIndex
from notellm.serve.related_cache import RelatedCache
from notellm.serve.schemas import NoteText

# Backends whose calls stay in this process and take microseconds: routes call them on the event loop. Any other
# backend (Milvus: a network round trip) is called in the thread pool so the loop keeps serving.
IN_PROCESS_BACKENDS = frozenset({"faiss"})


@dataclass
class Service:
    """The service's state, shared by all routes of one app."""

    index: NoteIndex
    model: Encoder  # embeds (PyTorch or ONNX Runtime)
    cfg: ServeConfig
    model_name: str = ""
    generator: object | None = None  # serves /generate (NoteLLM or LazyGenerator); None = cannot generate
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    gate: ModelGate = field(default_factory=ModelGate)  # one model call at a time, embeddings before generation
    batcher: EmbedBatcher = field(init=False)
    cache: RelatedCache | None = field(default=None, init=False)  # built at start-up if cfg.related_cache_k > 0
    model_info: dict | None = None  # /health's model fields when another process holds the model (workers.py)

    def __post_init__(self) -> None:
        self.batcher = EmbedBatcher(self._embed, max_batch=self.cfg.embed_batch_size,
                                    max_wait_ms=self.cfg.embed_max_wait_ms)
        self.batcher.on_batch = self.metrics.embed_batch.observe

    def _embed(self, notes: list[Note]) -> np.ndarray:
        with self.gate.embedding():
            return np.asarray(self.model.encode(notes), dtype=np.float32)  # the encoder batches by its batch_size

    async def call(self, fn, *args: Any):
        """Run `fn(*args)` (index work) on the loop for in-process backends, else in the thread pool."""
        if getattr(self.index, "name", "") in IN_PROCESS_BACKENDS:
            return fn(*args)
        return await run_in_threadpool(fn, *args)

    def build_cache(self) -> None:
        """Precompute every note's related list (cfg.related_cache_k neighbours) from the index: by brute force
        over its vectors for an exact index, by the index's own search for an approximate one (HNSW, IVF)."""
        k = self.cfg.related_cache_k
        if not k:
            return
        if getattr(self.index, "index_kind", "flat") != "flat":
            ids, scores, positions = self.index.neighbour_table(k)
            self.cache = RelatedCache.from_neighbours(ids, self.index.vectors(ids), k, scores, positions)
            return
        notes = self.index.search_titles("", len(self.index))
        if len(notes) != len(self.index):
            raise RuntimeError(f"related cache: the {self.index.name} backend listed {len(notes)} of "
                               f"{len(self.index)} notes; serve it with related_cache_k=0")
        ids = [n.note_id for n in notes]
        vectors = self.index.vectors(ids) if ids else np.zeros((0, self.index.dim), dtype=np.float32)
        self.cache = RelatedCache.build(ids, vectors, k)

    def check_notes(self, notes: list[NoteText], require_unique_ids: bool) -> None:
        """The configurable per-request limits (pydantic checks the fixed ones)."""
        cfg = self.cfg
        if len(notes) > cfg.max_notes_per_request:
            raise HTTPException(413, f"{len(notes)} notes in one request; the limit is {cfg.max_notes_per_request}")
        for i, note in enumerate(notes):
            for name, limit in (("title", cfg.max_title_chars), ("content", cfg.max_content_chars)):
                if len(getattr(note, name)) > limit:
                    raise HTTPException(422, f"notes[{i}].{name}: {len(getattr(note, name))} characters exceeds "
                                             f"the limit of {limit}")
            if len(note.hashtags) > cfg.max_hashtags:
                raise HTTPException(422, f"notes[{i}].hashtags: {len(note.hashtags)} exceeds {cfg.max_hashtags}")
        if require_unique_ids:
            seen: set[str] = set()
            for i, note in enumerate(notes):
                if note.note_id in seen:
                    raise HTTPException(422, f"notes[{i}].note_id {note.note_id!r} appears twice in this request")
                seen.add(note.note_id)


async def service(request: Request) -> Service:
    """Dependency: the app's `Service` (async, so FastAPI does not hop to a thread to resolve it)."""
    return request.app.state.service


def summary(note: Note) -> dict:
    """A note's summary fields as the API returns them."""
    return {"note_id": note.note_id, "title": note.title, "hashtags": list(note.hashtags), "category": note.category,
            "url": note.url}


def to_note(item: NoteText) -> Note:
    """A request's note through the data model's codec (the url, when given, is its one extra field)."""
    return Note.from_dict(item.model_dump(), extra=(URL,) if item.url else ())
