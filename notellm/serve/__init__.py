"""Serving: the HTTP API, its durable live index and the web page.

Modules (the data flow of one request, top to bottom):
    config.py    ServeConfig: limits, micro-batching and compaction settings
    app.py       create_app(index, encoder, cfg, generator=) -> FastAPI (assembles routers, middleware, start-up)
    service.py   Service: the state routes share (index, model, limits, batcher, cache) + its dependency
    routes/      one router per concern: related (hot path), notes, model (embed/generate), ops (health/metrics)
    responses.py JSONBytes: orjson-encoded responses built from plain dicts
    related_cache.py  RelatedCache: every note's top-k neighbours, kept exact under writes (optional)
    batcher.py   EmbedBatcher: concurrent embedding requests merged into one model call
    metrics.py   Prometheus metrics + request body cap (ASGI middleware)
    schemas.py   pydantic request/response bodies
    backend.py   the NoteIndex contract + open_index(backend, ...)
    store.py     LocalNoteIndex: snapshot + write-ahead log around retrieval.VectorIndex (default backend)
    wal.py       the framed, fsynced write-ahead log
    milvus.py    MilvusNoteIndex: the same contract on Milvus (cluster URI or milvus-lite file)
    build.py     build_index / index_from_vectors: the `notellm index build` step
    generator.py the PyTorch model behind /generate, loaded only when enabled (LazyGenerator)
    openapi.py   the OpenAPI document (docs/openapi.json)
    web/         the page served at /
"""

from __future__ import annotations
