"""`create_app(index, model, cfg)`: the FastAPI service over one note index and one model.

Routes (OpenAPI at /openapi.json and /docs; checked in as docs/openapi.json), one router module each in routes/:
    GET    /notes/{note_id}/related?k=&diversify=   nearest notes, optionally diversified by notellm.rerank
    GET    /notes/{note_id}                         one note
    GET    /notes?q=&limit=                         title search (the web page's search box)
    POST   /notes                                   add/update notes: embedded (micro-batched), durable, searchable
    DELETE /notes/{note_id}                         remove a note
    POST   /embed                                   embeddings of posted notes (not stored)
    POST   /generate                                hashtags or category for stored or posted notes
    GET    /health, GET /metrics (Prometheus text), GET / (the web page, notellm/serve/web/)

This module only assembles: the shared state is a `Service` (service.py) that routes get through a dependency;
middleware wraps the routers; start-up starts the embedding batcher and builds the related cache.
Nothing in a request reaches a file path: the model and the index are opened by the caller (CLI) from the
command line, and the page is served from the package's own folder.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from notellm import __version__
from notellm.retrieval.encode import Encoder
from notellm.serve.config import ServeConfig
from notellm.serve.metrics import MetricsMiddleware
from notellm.serve.protocol import NoteIndex
from notellm.serve.routes import ROUTERS
from notellm.serve.routes.ops import WEB_DIR
from notellm.serve.security import install_security
from notellm.serve.service import Service

DESCRIPTION = ("NoteLLM note recommendation service: related notes (I2I) with optional diversity re-ranking, live "
               "durable note updates, embeddings and hashtag/category generation.")


def create_app(index: NoteIndex, model: Encoder, cfg: ServeConfig | None = None, model_name: str = "",
               generator: object | None = None) -> FastAPI:
    """The service app. The caller owns `index` and `model` (opens and closes them).

    `model` embeds (any `Encoder`: PyTorch or ONNX Runtime); `generator` serves /generate (a NoteLLM or a
    `LazyGenerator`; default: `model` itself when it can generate, else /generate answers 501).
    """
    svc = Service(index=index, model=model, cfg=cfg or ServeConfig(), model_name=model_name,
                  generator=model if generator is None else generator)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await run_in_threadpool(svc.build_cache)
        await svc.batcher.start()
        svc.metrics.watch_gc()
        yield
        svc.metrics.unwatch_gc()
        await svc.batcher.stop()

    return assemble_app(svc, ROUTERS, lifespan)


def assemble_app(svc: Service, routers, lifespan) -> FastAPI:
    """An app over `svc` with `routers` and the shared middleware, security, error handler and static files (the
    full service above; the read-only workers of serve/workers.py)."""
    app = FastAPI(title="notellm", version=__version__, lifespan=lifespan, description=DESCRIPTION)
    app.state.service, app.state.gate = svc, svc.gate
    app.add_middleware(MetricsMiddleware, metrics=svc.metrics, max_body_bytes=svc.cfg.max_body_bytes)
    install_security(app, svc.cfg.allowed_hosts)  # Host check, CSP, 422s for any input (security.py)
    for router in routers:
        app.include_router(router)
    app.add_exception_handler(Exception, internal_error)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app


async def internal_error(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


__all__ = ["assemble_app", "create_app"]
