"""The service's routers, one module per concern; `create_app` includes them all.

    related.py  GET /notes/{id}/related             (the hot read path)
    notes.py    GET/POST/DELETE /notes...           (note reads and durable writes)
    model.py    POST /embed, POST /generate         (model calls)
    ops.py      GET /health, GET /metrics, GET /    (operations and the web page)
"""

from __future__ import annotations

from fastapi import APIRouter

from notellm.serve.routes import model, notes, ops, related

ROUTERS: tuple[APIRouter, ...] = (related.router, notes.router, notes.write_router, model.router,
                                  ops.router)  # order = match order
READ_ROUTERS: tuple[APIRouter, ...] = (related.router, notes.router, ops.router)  # a read-only worker's (workers.py)
