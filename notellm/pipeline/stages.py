"""Resumable pipeline stages: a finished stage leaves a marker file holding a hash of its inputs and its result.

`StageRunner(out_dir).run(name, params, fn)` hashes `params` (a JSON-able dict: configs, upstream stage hashes,
input file checksums). If `out_dir/.stages/<name>.json` holds the same hash, the stored result is returned and `fn`
is not called; otherwise `fn()` runs and its (JSON-able) result is written to the marker atomically. Chaining a
stage's hash into the next stage's params makes a change upstream re-run everything below it.

A stage that writes into a folder of its own (a training run, with checkpoints) passes it as `workdir`: the folder
is stamped with the stage's input hash. Re-running with the same inputs (an interrupted run) finds its own stamp
and resumes from what is there; with other inputs the folder is emptied first, so a run never resumes from the
checkpoints of a run on other data or settings.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

MARKER_DIR = ".stages"
WORKDIR_STAMP = ".stage_inputs"  # in a stage's workdir: the input hash of the stage run that owns its contents


def params_hash(params: dict[str, Any]) -> str:
    blob = json.dumps(params, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


class StageRunner:
    """Runs named stages once per parameter set; records which ran and which were reused."""

    def __init__(self, out_dir: str | Path, console: Console | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.marker_dir = self.out_dir / MARKER_DIR
        self.marker_dir.mkdir(parents=True, exist_ok=True)
        self.console = console or Console(stderr=True)
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self.hashes: dict[str, str] = {}
        self.seconds: dict[str, float] = {}  # compute time of every stage, whenever it ran

    def marker(self, name: str) -> Path:
        return self.marker_dir / f"{name}.json"

    def done(self, name: str, params: dict[str, Any]) -> dict | None:
        """The stored result of `name` if it finished with exactly these params, else None."""
        path = self.marker(name)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None  # a damaged marker means "not done"
        if record.get("hash") != params_hash(params):
            return None
        self.seconds[name] = float(record.get("seconds", 0.0))
        return record.get("result")

    def _claim(self, workdir: Path, digest: str) -> None:
        """Stamp `workdir` for this stage run; empty it first if another run's inputs left things in it."""
        stamp = workdir / WORKDIR_STAMP
        if workdir.is_dir() and any(workdir.iterdir()):
            owner = stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else None
            if owner != digest:
                self.console.print(f"[yellow]{workdir}: left by a run with other inputs; starting afresh[/yellow]")
                shutil.rmtree(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest, encoding="utf-8")

    def run(self, name: str, params: dict[str, Any], fn: Callable[[], Any], workdir: str | Path | None = None) -> Any:
        digest = params_hash(params)
        self.hashes[name] = digest
        cached = self.done(name, params)
        if cached is not None:
            self.skipped.append(name)
            self.console.print(f"[green]✓[/green] {name}: done earlier (inputs unchanged), skipped")
            return cached
        self.console.print(f"[bold cyan]▶[/bold cyan] {name} …")
        if workdir is not None:
            self._claim(Path(workdir), digest)
        start = time.monotonic()
        result = fn()
        seconds = round(time.monotonic() - start, 2)
        self.seconds[name] = seconds  # the stored figure, so a resumed run reports exactly what the first one did
        record = {"stage": name, "hash": digest, "seconds": seconds, "params": params, "result": result}
        tmp = self.marker(name).with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
        tmp.replace(self.marker(name))
        self.ran.append(name)
        self.console.print(f"[green]✓[/green] {name}: {seconds:.1f} s")
        return result
