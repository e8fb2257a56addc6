"""Prometheus metrics and the request-size guard, as one small ASGI middleware.

Per route *template* (`/notes/{note_id}/related`, never the raw path, so ids cannot blow up label cardinality):
`notellm_requests_total{route,method,status}`, `notellm_request_errors_total{route,method,kind=client|server}` and
`notellm_request_seconds{route,method}` (histogram), and `notellm_gc_pause_seconds{generation}`: every pass of
Python's cyclic garbage collector while the app runs (a stop-the-world pause every in-flight request waits out;
the histogram tells a latency tail caused by the collector from one caused by the machine). Each app gets its
own `CollectorRegistry`, so several apps in one process (tests) do not collide. Bodies are read up to
`max_body_bytes`; a larger one is answered 413 before the app sees it.
"""

from __future__ import annotations

import gc
import json
import re
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_CONVERTER = re.compile(r"\{(\w+):\w+\}")  # "/notes/{note_id:path}" -> "/notes/{note_id}", as OpenAPI shows it
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The service's Prometheus collectors, in a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("notellm_requests", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.errors = Counter("notellm_request_errors", "HTTP requests answered 4xx (client) or 5xx (server)",
                              ["route", "method", "kind"], registry=self.registry)
        self.latency = Histogram("notellm_request_seconds", "Request latency", ["route", "method"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.notes = Gauge("notellm_notes", "Notes in the index", registry=self.registry)
        self.embed_batch = Histogram("notellm_embed_batch_notes", "Notes per model call (micro-batching)",
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)
        self.gc_pause = Histogram("notellm_gc_pause_seconds", "Cyclic garbage collector passes", ["generation"],
                                  buckets=(0.0001, 0.0005, *LATENCY_BUCKETS), registry=self.registry)
        self._gc_start = 0.0

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_pause.labels(str(info["generation"])).observe(time.perf_counter() - self._gc_start)

    def watch_gc(self) -> None:
        """Time every garbage-collector pass (until `unwatch_gc`)."""
        gc.callbacks.append(self._on_gc)

    def unwatch_gc(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)


class MetricsMiddleware:
    """ASGI middleware: body-size cap (413) and per-route request/latency/error metrics."""

    def __init__(self, app, metrics: ServiceMetrics, max_body_bytes: int) -> None:
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes
        # per-request cost matters at thousands of requests/s: route templates and labelled children are looked
        # up once per (route, method, status) and then reused
        self._templates: dict[str, str] = {}
        self._children: dict[tuple[str, str, int], tuple] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            receive = await self._guarded_body(scope, receive, send_wrapper)
            if receive is not None:
                await self.app(scope, receive, send_wrapper)
        finally:
            requests, latency, errors = self._collectors(scope, status)
            requests.inc()
            latency.observe(time.perf_counter() - start)
            if errors is not None:
                errors.inc()

    def _collectors(self, scope, code: int) -> tuple:
        route = scope.get("route")
        path = getattr(route, "path", None) or ("static" if scope["path"].startswith("/static") else "other")
        template = self._templates.get(path)
        if template is None:
            template = self._templates[path] = _CONVERTER.sub(r"{\1}", path)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"  # clients choose the method: bound it
        key = (template, method, code)
        children = self._children.get(key)
        if children is None:
            m = self.metrics
            errors = m.errors.labels(template, method, "server" if code >= 500 else "client") if code >= 400 else None
            children = self._children[key] = (m.requests.labels(template, method, str(code)),
                                              m.latency.labels(template, method), errors)
        return children

    async def _guarded_body(self, scope, receive, send):
        """Read the whole body (bounded); answer 413 and return None if it is too large, else a replaying receive."""
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return receive
        declared = dict(scope.get("headers", [])).get(b"content-length")
        too_large = declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes
        chunks, size, more = [], 0, not too_large
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                too_large = True
                break
            chunks.append(chunk)
            more = message.get("more_body", False)
        if too_large:
            body = json.dumps({"detail": f"request body exceeds the limit of {self.max_body_bytes} bytes"}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return None
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay
