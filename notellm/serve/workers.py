"""`notellm serve --workers N`: one writer and N read-only worker processes behind one port.

    parent process                                   N reader processes (uvicorn's Multiprocess supervisor)
    ─ owns the index folder (flock, WAL, compaction)  ─ share the public socket the parent bound
    ─ holds the model (embedding, generation)        ─ each loads the folder's snapshot and follows its WAL
    ─ serves the full app on a private Unix socket   ─ serve related (every re-ranker), note lookup, search,
      (a uvicorn server in a thread)                    /health, /metrics from their own copy of the index
                                                     ─ forward POST /notes, DELETE /notes/{id}, /embed, /generate
                                                       unchanged to the writer's socket (httpx), reply as it did

Why N readers + 1 writer rather than a writer that also takes public reads: the readers are identical, so uvicorn's
own supervisor runs them (spawn, health checks, restarting a reader that dies, SIGTERM/SIGINT, SIGHUP restarts);
and a forward pass or an fsync in the writer never delays a read. A write pays one local hop (~1 ms).
Why the writer is the parent and not a fourth kind of process: the model and the folder's lock are loaded and
checked once, before anything is forked, with the CLI's ordinary error messages; when the writer thread ends
unexpectedly the whole server stops, loudly (readers cannot take writes without it). A reader exits when its
parent is gone, so no orphan serves stale data.

What a client sees (serve/follower.py): a reader applies the WAL records appended since its last request before
it answers, and the writer fsyncs a record before acknowledging it, so every read sent after a write's
acknowledgement sees the write, whichever reader answers (read-your-writes, also for deletes). Each reader keeps
its related cache exact through the same apply path. /metrics and the GC metrics are those of the process that
answered (each reader counts its own requests).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from uvicorn.supervisors.multiprocess import Multiprocess

from notellm.serve.app import assemble_app
from notellm.serve.config import ServeConfig
from notellm.serve.follower import WalFollower
from notellm.serve.routes import READ_ROUTERS
from notellm.serve.service import Service

log = logging.getLogger(__name__)

WRITER_URL = "http://localhost"  # the Host the writer's security check accepts; the socket decides where it goes
WRITE_ROUTES = (("/notes", "POST"), ("/notes/{note_id:path}", "DELETE"), ("/embed", "POST"), ("/generate", "POST"))
WRITER_START_TIMEOUT_S = 3600.0  # start-up builds the related cache: minutes for 10^5 notes
# uvicorn kills a worker that does not answer its health ping within this; a reader's imports (torch, faiss) alone
# take several seconds on a busy machine, and uvicorn's 5 s default killed every reader before it started
READER_HEALTHCHECK_S = 120
READER_THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class WorkerSettings:
    """What a reader process needs; pickled into each spawned reader by uvicorn."""

    index: Path
    writer_socket: Path
    cfg: ServeConfig
    parent_pid: int
    poll_s: float = 0.2  # an idle reader follows the log this often (a busy one before every request)


@dataclass
class ReaderApp:
    """uvicorn app factory (`factory=True`) for one reader process."""

    settings: WorkerSettings

    def __call__(self) -> FastAPI:
        return create_reader_app(self.settings)


class FollowLog:
    """ASGI middleware: apply the writer's new log records before every request (read-your-writes)."""

    def __init__(self, app, follower: WalFollower) -> None:
        self.app, self.follower = app, follower

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.follower.sync()
        await self.app(scope, receive, send)


def create_reader_app(settings: WorkerSettings) -> FastAPI:
    """The read-only app of one reader process: reads from a `WalFollower`, writes forwarded to the writer."""
    follower = WalFollower.open(settings.index)
    transport = {"uds": str(settings.writer_socket)}
    with httpx.Client(transport=httpx.HTTPTransport(**transport), base_url=WRITER_URL, timeout=30) as http:
        health = http.get("/health").raise_for_status().json()
        schema = http.get("/openapi.json").raise_for_status().json()  # the reader documents the whole API
    info = {key: health[key] for key in ("model", "runtime", "precision", "can_generate")}
    svc = Service(index=follower, model=None, cfg=settings.cfg, model_name=info["model"], model_info=info)
    writer = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(**transport), base_url=WRITER_URL, timeout=None)

    def rebuild_cache() -> None:  # after a reload the lists may have missed records: build them afresh
        svc.build_cache()

    follower.on_upsert = lambda ids, vectors: svc.cache.upsert(ids, vectors) if svc.cache is not None else None
    follower.on_delete = lambda note_id: svc.cache.delete(note_id) if svc.cache is not None else None
    follower.on_reload = rebuild_cache

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await run_in_threadpool(svc.build_cache)
        gc.collect()
        gc.freeze()  # as the single-process server does (cli/serve.py): no full GC pass over the snapshot
        poll = asyncio.create_task(_follow(follower, settings))
        svc.metrics.watch_gc()
        yield
        svc.metrics.unwatch_gc()
        poll.cancel()
        await writer.aclose()
        follower.close()

    app = assemble_app(svc, READ_ROUTERS, lifespan)
    forward = _forwarder(writer)
    for path, method in WRITE_ROUTES:
        app.add_api_route(path, forward, methods=[method], include_in_schema=False)
    app.add_middleware(FollowLog, follower=follower)
    app.openapi = lambda: schema
    return app


async def _follow(follower: WalFollower, settings: WorkerSettings) -> None:
    """Keep an idle reader current; stop the process when its parent (the writer) is gone."""
    while True:
        await asyncio.sleep(settings.poll_s)
        if os.getppid() != settings.parent_pid:
            log.error("reader %d: the writer process %d is gone; stopping", os.getpid(), settings.parent_pid)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        follower.sync()


def _forwarder(writer: httpx.AsyncClient):
    async def forward(request: Request) -> Response:
        """A write (or model call) goes to the writer process as it came; its answer goes back as it was."""
        target = request.scope.get("raw_path") or request.url.path.encode()  # ids keep their %-encoding
        if request.url.query:
            target += b"?" + request.url.query.encode()
        try:
            reply = await writer.request(request.method, target.decode("ascii"), content=await request.body(),
                                         headers={"content-type": request.headers.get("content-type", "")})
        except httpx.TransportError as exc:
            return JSONResponse({"detail": f"writes are unavailable: the writer process did not answer "
                                           f"({type(exc).__name__})"}, status_code=503)
        return Response(reply.content, status_code=reply.status_code,
                        media_type=reply.headers.get("content-type"))

    return forward


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor, which also stops everything when the writer thread has ended."""

    def __init__(self, config: uvicorn.Config, sockets, writer: threading.Thread) -> None:
        super().__init__(config, sockets)
        self.writer = writer

    def keep_subprocess_alive(self) -> None:
        if not self.writer.is_alive() and not self.should_exit.is_set():
            log.error("the writer stopped; stopping the readers")
            self.should_exit.set()
            return
        super().keep_subprocess_alive()


def serve_workers(app: FastAPI, index: Path, cfg: ServeConfig, *, workers: int, host: str, port: int,
                  log_level: str = "info", access_log: bool = False) -> None:
    """Serve `app` (the full service over the writable index at `index`) as the writer, and `workers` read-only
    processes on host:port; returns after SIGTERM/SIGINT once every process has stopped.

    Raises:
        RuntimeError: the writer did not start, or stopped while serving.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    server_options = {"loop": "uvloop", "http": "httptools", "log_level": log_level, "access_log": access_log}
    with tempfile.TemporaryDirectory(prefix="notellm-writer-") as tmp:
        sock = Path(tmp) / "writer.sock"
        writer = uvicorn.Server(uvicorn.Config(app, uds=str(sock), **server_options))
        thread = threading.Thread(target=writer.run, name="notellm-writer", daemon=True)
        thread.start()
        deadline = time.monotonic() + WRITER_START_TIMEOUT_S
        while not writer.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not writer.started:
            writer.should_exit = True
            raise RuntimeError("the writer did not start (its error is logged above)")
        # Readers share the cores: one thread per library in each. Set before they start (OpenBLAS, OpenMP and torch
        # size their pools when loaded): with the default pools, BLAS threads of 2-3 processes spin-waiting on 2
        # cores made a related request cost 8 ms of CPU instead of 1 (measured). This process's pools exist already.
        os.environ.update(READER_THREADS)
        settings = WorkerSettings(index=Path(index).resolve(), writer_socket=sock, cfg=cfg, parent_pid=os.getpid())
        config = uvicorn.Config(ReaderApp(settings), factory=True, host=host, port=port, workers=workers,
                                timeout_worker_healthcheck=READER_HEALTHCHECK_S, **server_options)
        supervisor = _Supervisor(config, [config.bind_socket()], thread)
        try:
            supervisor.run()
        finally:
            stopped_itself = not thread.is_alive()
            writer.should_exit = True
            thread.join()
        if stopped_itself:
            raise RuntimeError("the writer stopped while serving (its error is logged above); all workers stopped")
