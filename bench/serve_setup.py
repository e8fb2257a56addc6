"""Shared setup of the serving benchmarks: a saved model, an index of the shipped Stack Exchange notes, a server.

Not a benchmark itself; imported by bench_serve.py and bench_crash.py (run them from the repo root).
"""

from __future__ import annotations

import os
import platform
import random
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from notellm.machine import cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NOTELLM_SHARED", REPO.parent / "shared"))


def machine() -> dict:
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])


def save_model(backbone: str, workdir: Path) -> Path:
    """A saved, untrained NoteLLM on `backbone` ("tiny" = random 2-layer Llama, or a packaged name/folder)."""
    from notellm.model.notellm import NoteLLM, NoteLLMConfig

    target = workdir / f"model-{Path(backbone).name}"
    if (target / "notellm.json").exists():
        return target
    if backbone == "tiny":
        from notellm.model.backbone import create_tiny_backbone

        backbone = str(create_tiny_backbone(workdir / "tiny-backbone"))
    return NoteLLM.from_backbone(NoteLLMConfig(backbone=backbone)).save_pretrained(target)


def stackexchange_notes(workdir: Path, limit: int, seed: int = 0):
    """The shipped Stack Exchange questions as Notes (imported once into workdir/data), `limit` of them, shuffled."""
    from notellm.data.store import frame_to_notes, import_stackexchange, load_notes

    data = workdir / "data"
    if not (data / "notes.parquet").exists():
        import_stackexchange([SHARED / "data" / "stackexchange"], data)
    notes = frame_to_notes(load_notes(data))
    random.Random(seed).shuffle(notes)
    return notes[:limit] if limit else notes


def build_index(model_dir: Path, notes, out: Path, runtime: str | None = None, index=None) -> Path:
    """index: the IndexConfig of the folder (default: the store's default)."""
    from notellm.inference.load import load_encoder
    from notellm.serve.build import build_index as build

    return build(load_encoder(model_dir, runtime), notes, out, overwrite=True, index=index)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, index_dir: Path, port: int, extra: list[str] = (), timeout: float = 600,
                 log: Path | None = None) -> subprocess.Popen:
    """`notellm serve` as a subprocess on 127.0.0.1:port; returns once /health answers."""
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    args = [sys.executable, "-m", "notellm.cli", "serve", "--model", str(model_dir), "--index", str(index_dir),
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *extra]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(args, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} (see {log})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not answer /health within {timeout} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
