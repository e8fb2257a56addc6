"""Writing a data folder safely: atomic Parquet/JSON writes, checksums and the `manifest.json`.

Every file goes to a temporary sibling first and is renamed into place (`os.replace`, atomic on POSIX), so a killed
import or mining run never leaves half a file behind, and re-running simply overwrites. The manifest is the folder's
record of what produced it: source files with sha256 checksums, parameters, row counts and rejected counts by reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from notellm.data.schema import MANIFEST_FILE

MANIFEST_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Run `write(tmp_path)` then rename tmp_path onto `path`; the temp file is removed on any failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` (index dropped) as Parquet, atomically."""
    path = Path(path)
    _atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))
    return path


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` (index dropped) as UTF-8 CSV, atomically."""
    path = Path(path)
    _atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
    return path


def write_json(data: Any, path: str | Path) -> Path:
    """Write `data` as indented UTF-8 JSON, atomically."""
    path = Path(path)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def source_entry(path: str | Path) -> dict[str, Any]:
    """A manifest record of one input file: path, size and sha256."""
    path = Path(path)
    return {"path": str(path.resolve()), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def file_entry(path: str | Path, rows: int) -> dict[str, Any]:
    """A manifest record of one written file: row count and sha256."""
    return {"rows": int(rows), "sha256": sha256_file(path)}


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    """The folder's `manifest.json` as a dict; a clear error if the folder is not a notellm data folder."""
    path = Path(data_dir) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {data_dir} is not a notellm data folder (create one with `notellm import files` "
            "or `notellm import stackexchange`)"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def new_manifest(command: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """A fresh manifest skeleton for an import run."""
    return {
        "format_version": MANIFEST_VERSION,
        "created_by": command,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "parameters": parameters,
        "sources": [],
        "files": {},
        "counts": {},
        "rejected": {},
        "skipped": {},
    }


def update_manifest(data_dir: str | Path, section: str, value: Any, files: dict[str, Any] | None = None) -> dict:
    """Set `manifest[section] = value` (and merge `files` into manifest['files'], a None entry removing that file),
    rewriting it atomically."""
    manifest = read_manifest(data_dir)
    manifest[section] = value
    if files:
        listed = manifest.setdefault("files", {})
        listed.update(files)
        for name in [n for n, entry in files.items() if entry is None]:
            del listed[name]
    manifest["updated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_json(manifest, Path(data_dir) / MANIFEST_FILE)
    return manifest
