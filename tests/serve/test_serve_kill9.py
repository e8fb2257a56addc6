"""kill -9 the server while clients write: every acknowledged note is there after a restart, no file is corrupt.

    PYTHONPATH=. python -m pytest tests/serve/test_serve_kill9.py -q
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from notellm.serve.store import LocalNoteIndex

SERVER = Path(__file__).parent / "run_server.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(index_dir: Path, port: int, compact_every: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, str(SERVER), str(index_dir), str(port), str(compact_every)], env=env)
    # No wall-clock limit of its own (on one loaded core the imports alone take tens of seconds): it waits while the
    # server lives; a server that hangs is stopped by pytest's per-test timeout.
    while proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the server exited with code {proc.returncode} before answering /health")


def test_kill_during_writes_loses_no_acknowledged_note(index_dir):
    port = _free_port()
    proc = _start(index_dir, port, compact_every=7)  # small: compactions run while we kill
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                ids = [f"w{worker}-{i}-{j}" for j in range(2)]
                notes = [{"note_id": n, "title": f"note {n} espresso", "content": "crash test"} for n in ids]
                try:
                    response = http.post("/notes", json={"notes": notes})
                except httpx.HTTPError:
                    return  # the server died: this write was never acknowledged
                if response.status_code == 200:
                    with lock:
                        acked.extend(response.json()["ids"])

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 60 and proc.poll() is None and any(t.is_alive() for t in threads):  # however slow the machine
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    acknowledged = list(acked)
    assert len(acknowledged) >= 60, "too few writes were acknowledged before the kill"

    restarted = _start(index_dir, port, compact_every=7)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            missing = [n for n in acknowledged if http.get(f"/notes/{n}").status_code != 200]
            total = http.get("/health").json()["notes"]
            related = http.get(f"/notes/{acknowledged[-1]}/related", params={"k": 3})
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=20)
    assert missing == []
    assert total >= 24 + len(acknowledged)  # writes fsynced but killed before their reply may also be there
    assert related.status_code == 200
    # after the graceful stop the folder opens cleanly again, holding the same notes
    assert len(LocalNoteIndex.open(index_dir)) == total
