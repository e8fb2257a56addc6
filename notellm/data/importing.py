"""Import a user's own notes and events files into a data folder (`notellm import files`).

The flow: read each file (readers.py) -> validate (validate.py) -> write `notes.parquet`, `events.parquet`,
`rejects/<kind>.parquet` + `.csv` and finally `manifest.json`. Events are checked against the ACCEPTED notes, so an
event on a rejected note is itself rejected (`unknown_note`) and counted. Files left from an earlier run in the
same folder (pairs, links, rejects) are dropped, since they would no longer match the new notes; the folder is
written as a temporary sibling and swapped in whole (see `write_data_folder`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from notellm.atomicdir import writing_folder
from notellm.data import schema as S
from notellm.data.artifacts import file_entry, new_manifest, source_entry, write_csv, write_json, write_parquet
from notellm.data.readers import DataFileError, read_table
from notellm.data.validate import BadBytes, Validated, validate_events, validate_notes

STALE_FILES = (S.NOTES_FILE, S.EVENTS_FILE, S.LINKS_FILE, S.PAIRS_FILE, S.NOTE_SPLITS_FILE)


@dataclass
class ImportReport:
    """What an import wrote and what it refused.

    Attributes:
        out_dir: the data folder.
        counts: rows written per kind, e.g. {"notes": 3750, "events": 20000, "users": 5000, "links": 600}.
        rejected: kind -> {reason: n} for rows refused by validation (written to rejects/<kind>.parquet).
        skipped: reason -> n for source records that are not data errors but carry nothing to import
            (e.g. a Stack Exchange comment by a deleted user).
        messages: the first reject messages per file, naming file, row and field.
    """

    out_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def table(self) -> Table:
        """A rich table: accepted and rejected/skipped counts by reason."""
        table = Table(title=f"import -> {self.out_dir}")
        table.add_column("kind")
        table.add_column("outcome")
        table.add_column("rows", justify="right")
        for kind, n in self.counts.items():
            table.add_row(kind, "written", f"{n:,}")
        for kind, reasons in self.rejected.items():
            for reason, n in reasons.items():
                table.add_row(kind, f"rejected: {reason}", f"{n:,}")
        for reason, n in self.skipped.items():
            table.add_row("source", f"skipped: {reason}", f"{n:,}")
        return table


def write_data_folder(
    out_dir: Path,
    manifest: dict[str, Any],
    notes: Validated,
    events: Validated | None,
    links: Validated | None = None,
    skipped: dict[str, int] | None = None,
    inputs: list[Path] | tuple[Path, ...] = (),
) -> ImportReport:
    """Write the validated frames, their rejects and the manifest (last) as the folder `out_dir`.

    Everything is written into a temporary sibling folder which then replaces `out_dir` in one step
    (notellm/atomicdir.py): a crash part-way leaves the previous folder whole, never new notes beside old events
    and manifest. Files of an earlier import (pairs, links, splits) do not survive, since they would no longer
    match the new notes. `out_dir` must be missing, empty or a notellm data folder, and must not hold an input.
    """
    check_out_dir(out_dir, inputs)
    final_dir = out_dir
    with writing_folder(final_dir) as out_dir:
        report = _write_into(out_dir, manifest, notes, events, links, skipped)
    report.out_dir = final_dir
    return report


def check_out_dir(out_dir: Path, inputs: list[Path] | tuple[Path, ...] = ()) -> None:
    """Refuse an `--out` that is a non-empty folder not written by notellm, or that holds one of the inputs."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataFileError(f"--out {out_dir} is a file, not a folder")
    resolved = out_dir.resolve()
    for source in inputs:
        source = Path(source).resolve()
        if source == resolved or resolved in source.parents:
            raise DataFileError(f"--out {out_dir} holds the input {source}; write the data folder elsewhere")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / S.MANIFEST_FILE).is_file():
        raise DataFileError(f"--out {out_dir} is not empty and not a notellm data folder (no {S.MANIFEST_FILE}); "
                            "refusing to replace it: choose a new or empty folder")


def _write_into(
    out_dir: Path,
    manifest: dict[str, Any],
    notes: Validated,
    events: Validated | None,
    links: Validated | None,
    skipped: dict[str, int] | None,
) -> ImportReport:
    written: dict[str, Any] = {}
    report = ImportReport(out_dir=out_dir, skipped=dict(skipped or {}))
    parts: list[tuple[str, str, Validated | None]] = [
        ("notes", S.NOTES_FILE, notes),
        ("events", S.EVENTS_FILE, events),
    ]
    for kind, name, validated in parts:
        if validated is None:
            continue
        path = write_parquet(validated.accepted, out_dir / name)
        written[name] = file_entry(path, len(validated.accepted))
        report.counts[kind] = len(validated.accepted)
        report.messages.extend(validated.messages(limit=10))
        if len(validated.rejects):
            report.rejected[kind] = validated.counts["rejected"]
            rej_path = write_parquet(validated.rejects, out_dir / S.REJECTS_DIR / f"{kind}.parquet")
            write_csv(validated.rejects, out_dir / S.REJECTS_DIR / f"{kind}.csv")
            written[f"{S.REJECTS_DIR}/{kind}.parquet"] = file_entry(rej_path, len(validated.rejects))
    if events is not None:
        report.counts["users"] = int(events.accepted[S.USER_ID].nunique())
    if links is not None:
        path = write_parquet(links.accepted, out_dir / S.LINKS_FILE)
        written[S.LINKS_FILE] = file_entry(path, len(links.accepted))
        report.counts["links"] = len(links.accepted)
        report.messages.extend(links.messages(limit=10))
        if len(links.rejects):
            report.rejected["links"] = links.counts["rejected"]
            rej_path = write_parquet(links.rejects, out_dir / S.REJECTS_DIR / "links.parquet")
            write_csv(links.rejects, out_dir / S.REJECTS_DIR / "links.csv")
            written[f"{S.REJECTS_DIR}/links.parquet"] = file_entry(rej_path, len(links.rejects))
    for name in STALE_FILES:
        if name not in written and (out_dir / name).exists():
            (out_dir / name).unlink()
    for kind in ("notes", "events"):
        for suffix in (".parquet", ".csv"):
            stale = out_dir / S.REJECTS_DIR / f"{kind}{suffix}"
            if f"{S.REJECTS_DIR}/{kind}.parquet" not in written and stale.exists():
                stale.unlink()

    manifest["files"] = written
    manifest["counts"] = dict(report.counts)
    manifest["rejected"] = report.rejected
    manifest["skipped"] = report.skipped
    manifest["repaired_bytes"] = {
        kind: v.counts["repaired_bytes"] for kind, _, v in parts if v is not None and v.counts["repaired_bytes"]
    }
    write_json(manifest, out_dir / S.MANIFEST_FILE)
    return report


def import_files(
    notes_path: str | Path,
    events_path: str | Path | None,
    out_dir: str | Path,
    *,
    on_bad_bytes: BadBytes = "reject",
) -> ImportReport:
    """Validate a notes file (and optionally an events file) and write them as a data folder.

    Args:
        notes_path: CSV / JSONL / Parquet with note_id, title, content, hashtags, category [, created_at, extras].
        events_path: CSV / JSONL / Parquet with user_id, note_id, timestamp [, action, weight], or None.
        out_dir: the data folder to (over)write.
        on_bad_bytes: "reject" rows holding undecodable bytes, or "replace" the bytes with U+FFFD and keep them.

    Raises:
        DataFileError: a file is missing, unreadable, or lacks a required column.
    """
    out_dir = Path(out_dir)
    manifest = new_manifest(
        "notellm import files",
        {
            "notes": str(notes_path),
            "events": None if events_path is None else str(events_path),
            "on_bad_bytes": on_bad_bytes,
        },
    )
    notes = validate_notes(read_table(notes_path), on_bad_bytes=on_bad_bytes)
    manifest["sources"].append(source_entry(notes_path))
    events = None
    if events_path is not None:
        events = validate_events(read_table(events_path), pd.Index(notes.accepted[S.NOTE_ID]), on_bad_bytes)
        manifest["sources"].append(source_entry(events_path))
    inputs = [Path(notes_path)] + ([] if events_path is None else [Path(events_path)])
    check_out_dir(out_dir, inputs)  # before reading: a refused --out costs nothing
    return write_data_folder(out_dir, manifest, notes, events, inputs=inputs)
