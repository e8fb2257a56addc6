"""`create_app(index, model, cfg)`: the FastAPI service over one note index and one model.

Routes (OpenAPI at /openapi.json and /docs; checked in as docs/openapi.json):
    GET    /notes/{note_id}/related?k=&diversify=   nearest notes, optionally diversified by notellm.rerank
    GET    /notes/{note_id}                         one note
    GET    /notes?q=&limit=                         title search (the web page's search box)
    POST   /notes                                   add/update notes: embedded (micro-batched), durable, searchable
    DELETE /notes/{note_id}                         remove a note
    POST   /embed                                   embeddings of posted notes (not stored)
    POST   /generate                                hashtags or category for stored or posted notes
    GET    /health, GET /metrics (Prometheus text), GET / (the web page, notellm/serve/web/)

Nothing in a request reaches a file path: the model and the index are opened by the caller (CLI) from the
command line, and the page is served from the package's own folder.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from notellm import __version__
from notellm.data.schema import Note
from notellm.retrieval.encode import Encoder
from notellm.serve.backend import URL, NoteIndex, note_url
from notellm.serve.batcher import EmbedBatcher
from notellm.serve.config import ServeConfig
from notellm.serve.gate import ModelGate
from notellm.serve.generation import generate_in_chunks
from notellm.serve.generator import can_generate
from notellm.serve.metrics import MetricsMiddleware, ServiceMetrics
from notellm.serve.schemas import (
    DeleteOut,
    EmbedIn,
    EmbedOut,
    ErrorOut,
    GenerateIn,
    GenerateOut,
    HealthOut,
    NoteOut,
    NoteSummary,
    NoteText,
    RelatedNote,
    RelatedOut,
    SearchOut,
    UpsertIn,
    UpsertOut,
)
from notellm.serve.security import install_security

WEB_DIR = Path(__file__).parent / "web"
Diversify = Literal["none", "ssd", "ssd_star", "dpp", "mmr"]
_ERRORS = {404: {"model": ErrorOut, "description": "Unknown note id"},
           413: {"model": ErrorOut, "description": "Body too large"}}


def _summary(note: Note) -> dict:
    return {"note_id": note.note_id, "title": note.title, "hashtags": list(note.hashtags), "category": note.category,
            "url": note_url(note)}


def _to_note(item: NoteText) -> Note:
    return Note(note_id=item.note_id, title=item.title, content=item.content, hashtags=tuple(item.hashtags),
                category=item.category, extra={URL: item.url} if item.url else {})


def create_app(index: NoteIndex, model: Encoder, cfg: ServeConfig | None = None, model_name: str = "",
               generator: object | None = None) -> FastAPI:
    """The service app. The caller owns `index` and `model` (opens and closes them).

    `model` embeds (any `Encoder`: PyTorch or ONNX Runtime); `generator` serves /generate (a NoteLLM or a
    `LazyGenerator`; default: `model` itself when it can generate, else /generate answers 501).
    """
    cfg = cfg or ServeConfig()
    generator = model if generator is None else generator
    metrics = ServiceMetrics()
    gate = ModelGate()  # one model call at a time, embeddings (writes) before generation chunks (gate.py)

    def embed_fn(notes: list[Note]) -> np.ndarray:
        with gate.embedding():
            return np.asarray(model.encode(notes), dtype=np.float32)  # the encoder batches by its batch_size

    batcher = EmbedBatcher(embed_fn, max_batch=cfg.embed_batch_size, max_wait_ms=cfg.embed_max_wait_ms)
    batcher.on_batch = metrics.embed_batch.observe

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="notellm", version=__version__, lifespan=lifespan,
                  description="NoteLLM note recommendation service: related notes (I2I) with optional diversity "
                              "re-ranking, live durable note updates, embeddings and hashtag/category generation.")
    app.state.index, app.state.batcher, app.state.metrics, app.state.cfg = index, batcher, metrics, cfg
    app.state.gate = gate
    app.add_middleware(MetricsMiddleware, metrics=metrics, max_body_bytes=cfg.max_body_bytes)
    install_security(app, cfg.allowed_hosts)  # Host check, CSP, 422s for any input (security.py)

    def check_notes(notes: list[NoteText], require_unique_ids: bool) -> None:
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

    @app.get("/notes/{note_id:path}/related", response_model=RelatedOut, responses=_ERRORS, tags=["recommend"])
    def related(note_id: str, k: int = Query(10, ge=1, description="How many related notes."),
                diversify: Diversify = Query("none", description="Re-ranker from notellm.rerank, or none.")):
        """The k notes most related to a stored note (cosine), optionally diversity re-ranked."""
        if k > cfg.max_k:
            raise HTTPException(422, f"k={k} exceeds the limit of {cfg.max_k}")
        try:
            query = index.vectors([note_id])[0]  # (d,)
        except KeyError:
            raise HTTPException(404, f"unknown note id {note_id!r}") from None
        n_candidates = k * cfg.candidate_factor if diversify != "none" else k
        hits = [h for h in index.search(query, n_candidates + 1) if h[0] != note_id][:n_candidates]
        considered = len(hits)
        if diversify != "none" and len(hits) > 1:
            from notellm.rerank import rerank

            ids = [h[0] for h in hits]
            scores = np.asarray([h[1] for h in hits], dtype=np.float32)
            order = rerank(scores, index.vectors(ids), k, diversify, **cfg.rerank_params.get(diversify, {}))
            hits = [hits[int(i)] for i in order]
        items = []
        for (_, score), note in zip(hits[:k], index.get_many([h[0] for h in hits[:k]])):
            if note is not None:  # deleted between search and lookup: skip it
                items.append(RelatedNote(**_summary(note), score=score, rank=len(items) + 1))
        return RelatedOut(note_id=note_id, k=k, diversify=diversify, candidates=considered, items=items)

    @app.get("/notes/{note_id:path}", response_model=NoteOut, responses=_ERRORS, tags=["notes"])
    def get_note(note_id: str):
        """One stored note."""
        note = index.get(note_id)
        if note is None:
            raise HTTPException(404, f"unknown note id {note_id!r}")
        return NoteOut(**_summary(note), content=note.content)

    @app.get("/notes", response_model=SearchOut, tags=["notes"])
    def search_notes(q: str = Query("", max_length=200, description="Text the title must contain (any case)."),
                     limit: int = Query(20, ge=1, description="Most notes to return.")):
        """Notes whose title contains `q` (the page's search box); some notes when `q` is empty."""
        limit = min(limit, cfg.max_search_results)
        return SearchOut(query=q, items=[NoteSummary(**_summary(n)) for n in index.search_titles(q, limit)])

    @app.post("/notes", response_model=UpsertOut, responses=_ERRORS, tags=["notes"])
    async def upsert_notes(body: UpsertIn):
        """Add or replace notes: embedded, written durably (fsynced), then searchable at once; no rebuild."""
        check_notes(body.notes, require_unique_ids=True)
        notes = [_to_note(n) for n in body.notes]
        vectors = await batcher.embed(notes)  # (n, d)
        if vectors.shape[1] != index.dim:
            raise HTTPException(500, f"the model embeds into {vectors.shape[1]} dims, the index holds {index.dim}")
        await run_in_threadpool(index.upsert, notes, vectors)
        total = len(index)
        metrics.notes.set(total)
        return UpsertOut(ids=[n.note_id for n in notes], notes_total=total)

    @app.delete("/notes/{note_id:path}", response_model=DeleteOut, responses=_ERRORS, tags=["notes"])
    def delete_note(note_id: str):
        """Remove a stored note (durably)."""
        if not index.delete(note_id):
            raise HTTPException(404, f"unknown note id {note_id!r}")
        total = len(index)
        metrics.notes.set(total)
        return DeleteOut(deleted=note_id, notes_total=total)

    @app.post("/embed", response_model=EmbedOut, responses=_ERRORS, tags=["model"])
    async def embed(body: EmbedIn):
        """Embeddings of the posted notes (nothing is stored)."""
        check_notes(body.notes, require_unique_ids=False)
        vectors = await batcher.embed([_to_note(n) for n in body.notes])  # (n, d)
        return EmbedOut(dim=int(vectors.shape[1]), embeddings=vectors.tolist())

    @app.post("/generate", response_model=GenerateOut, responses={**_ERRORS, 501: {"model": ErrorOut}},
              tags=["model"])
    def generate(body: GenerateIn):
        """Generate hashtags (k per note) or a category for stored notes (`note_ids`) or posted `notes`."""
        if not can_generate(generator, body.task):
            raise HTTPException(501, f"the loaded model cannot generate {body.task} (generation runs on the PyTorch "
                                     "model: start the service with --generate-model)")
        if body.note_ids:
            if len(body.note_ids) > cfg.max_notes_per_request:
                raise HTTPException(413, f"{len(body.note_ids)} note ids; the limit is {cfg.max_notes_per_request}")
            notes = []
            for note_id in body.note_ids:
                note = index.get(note_id)
                if note is None:
                    raise HTTPException(404, f"unknown note id {note_id!r}")
                notes.append(note)
        else:
            check_notes(body.notes, require_unique_ids=False)
            notes = [_to_note(n) for n in body.notes]
        results = generate_in_chunks(generator, gate, body, notes, cfg.generate_chunk_notes)  # writes go first
        return GenerateOut(task=body.task, results=results)

    @app.get("/health", response_model=HealthOut, tags=["ops"])
    def health():
        """Liveness plus what is loaded."""
        total = len(index)
        metrics.notes.set(total)
        return HealthOut(status="ok", backend=index.name, notes=total, dim=index.dim, model=model_name,
                         can_generate=can_generate(generator, "hashtags") and can_generate(generator, "category"),
                         runtime=getattr(model, "runtime", "custom"), precision=getattr(model, "precision", "unknown"))

    @app.get("/metrics", tags=["ops"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    def prometheus_metrics():
        """Prometheus metrics: requests, errors and latency histograms per route, notes, embed batch sizes."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception):
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(WEB_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app


__all__ = ["create_app"]
