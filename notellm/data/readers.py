"""Read a user's table (CSV, JSONL or Parquet) into raw rows, keeping every row that can be salvaged.

Choices:
- Format from the suffix: `.csv`/`.tsv`, `.jsonl`/`.ndjson`/`.json` (one object per line), `.parquet`/`.pq`.
- Text files are UTF-8 (a BOM is skipped). Undecodable bytes do not abort the file: they are replaced by U+FFFD,
  their byte offset and line are recorded, and the record holding them is flagged so validation can reject it with
  that location. Every other record is read normally ("do not lose good rows").
- CSV cells are read as strings (no type guessing: note id `007` stays `007`). pandas' fast C parser handles
  clean files; a file with bad bytes or a malformed record (wrong number of fields) is re-read with the standard
  `csv` module, which knows each record's line, so the bad records can be rejected one by one.
- JSONL is parsed line by line with `json.loads` so a malformed line is rejected alone, with its line number.
- Row numbers (`source_row`) are 1-based data-record numbers: CSV does not count the header; JSONL counts
  non-empty lines; Parquet counts rows.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SOURCE_ROW = "source_row"  # 1-based data-record number in the source file
REASON = "reason"
DETAIL = "detail"
RAW_LINE = "raw_line"  # the text of a record that could not be parsed into fields

CSV_SUFFIXES = (".csv", ".tsv")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")


class DataFileError(ValueError):
    """A whole input file is unusable (not found, unknown format, missing required columns)."""


@dataclass
class RawTable:
    """The rows of one input file before validation.

    Attributes:
        source: the file's path as given (used in every message).
        frame: parsed records, one row each, columns as in the file; `source_row` holds record numbers.
        flags: positional row index in `frame` -> (reason, detail) for records that parsed but must be rejected
            (undecodable bytes).
        malformed: records that could not be parsed into fields: columns source_row, raw_line, reason, detail.
    """

    source: str
    frame: pd.DataFrame
    flags: dict[int, tuple[str, str]] = field(default_factory=dict)
    malformed: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({SOURCE_ROW: [], RAW_LINE: [], REASON: [], DETAIL: []})
    )


def _decode(data: bytes) -> tuple[str, list[tuple[int, str]]]:
    """Decode UTF-8, replacing bad bytes with U+FFFD; returns the text and (byte offset, description) per bad run."""
    bad: list[tuple[int, str]] = []
    parts: list[str] = []
    pos = 0
    if data.startswith(codecs.BOM_UTF8):
        pos = len(codecs.BOM_UTF8)
    # Hand-written because no codec reports *all* error offsets while still decoding the rest.
    while pos < len(data):
        try:
            parts.append(data[pos:].decode("utf-8"))
            break
        except UnicodeDecodeError as exc:
            parts.append(data[pos : pos + exc.start].decode("utf-8"))
            offset = pos + exc.start
            bad.append((offset, f"{exc.reason} (byte 0x{data[offset]:02x})"))
            parts.append("\ufffd")
            pos = pos + exc.end
    return "".join(parts), bad


def _line_of(data: bytes, offsets: list[int]) -> list[int]:
    """1-based line number of each byte offset."""
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    return [int(np.searchsorted(newlines, off, side="left")) + 1 for off in offsets]


def _bad_byte_detail(items: list[tuple[int, int, str]]) -> str:
    return "; ".join(f"undecodable byte at offset {off} (line {line}): {why}" for off, line, why in items[:3])


def _read_csv(path: Path, sep: str) -> RawTable:
    data = path.read_bytes()
    text, bad = _decode(data)
    if not bad:
        try:
            frame = pd.read_csv(
                io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False, on_bad_lines="error"
            )
            return RawTable(str(path), _attach_rows(frame, np.arange(1, len(frame) + 1), path))
        except pd.errors.EmptyDataError as exc:
            raise DataFileError(f"{path}: empty file (no header row)") from exc
        except pd.errors.ParserError:
            pass  # malformed records: fall through to the record-by-record reader below
    bad_lines = _line_of(data, [off for off, _ in bad]) if bad else []
    bad_by_line: dict[int, list[tuple[int, int, str]]] = {}
    for (off, why), line in zip(bad, bad_lines, strict=True):
        bad_by_line.setdefault(line, []).append((off, line, why))

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header = next(reader, None)
    if header is None:
        raise DataFileError(f"{path}: empty file (no header row)")
    rows: list[list[str]] = []
    numbers: list[int] = []
    flags: dict[int, tuple[str, str]] = {}
    malformed: list[dict] = []
    record = 0
    start_line = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over csv's 131,072-character limit: reject this record, go on
            record += 1
            detail = f"line {start_line}: {exc}"
            malformed.append({SOURCE_ROW: record, RAW_LINE: "", REASON: "malformed_row", DETAIL: detail})
            start_line = reader.line_num + 1
            continue
        end_line = reader.line_num
        if not values:  # blank line
            start_line = end_line + 1
            continue
        record += 1
        hits = [item for line in range(start_line, end_line + 1) for item in bad_by_line.get(line, [])]
        if len(values) != len(header):
            detail = f"line {start_line}: {len(values)} fields, header has {len(header)}"
            malformed.append({SOURCE_ROW: record, RAW_LINE: sep.join(values), REASON: "malformed_row", DETAIL: detail})
        else:
            if hits:
                flags[len(rows)] = ("undecodable_bytes", _bad_byte_detail(hits))
            rows.append(values)
            numbers.append(record)
        start_line = end_line + 1
    frame = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header, dtype=object)
    frame = _attach_rows(frame, numbers, path)
    return RawTable(str(path), frame, flags, pd.DataFrame(malformed, columns=[SOURCE_ROW, RAW_LINE, REASON, DETAIL]))


def _unencodable_field(obj: dict) -> str | None:
    """The first key whose value (or a string inside it) cannot be encoded as UTF-8, else None."""

    def bad(value) -> bool:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
            return False
        if isinstance(value, dict):
            return any(bad(k) or bad(v) for k, v in value.items())
        if isinstance(value, list):
            return any(bad(v) for v in value)
        return False

    return next((str(k).encode("utf-8", "backslashreplace").decode() for k, v in obj.items() if bad(k) or bad(v)),
                None)


def _read_jsonl(path: Path) -> RawTable:
    data = path.read_bytes()
    text, bad = _decode(data)
    bad_lines = _line_of(data, [off for off, _ in bad]) if bad else []
    bad_by_line: dict[int, list[tuple[int, int, str]]] = {}
    for (off, why), line in zip(bad, bad_lines, strict=True):
        bad_by_line.setdefault(line, []).append((off, line, why))
    records: list[dict] = []
    numbers: list[int] = []
    flags: dict[int, tuple[str, str]] = {}
    malformed: list[dict] = []
    record = 0
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        record += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            malformed.append(
                {SOURCE_ROW: record, RAW_LINE: line, REASON: "malformed_json", DETAIL: f"line {line_no}: {exc.msg}"}
            )
            continue
        if not isinstance(obj, dict):
            detail = f"line {line_no}: expected a JSON object, got {type(obj).__name__}"
            malformed.append({SOURCE_ROW: record, RAW_LINE: line, REASON: "malformed_json", DETAIL: detail})
            continue
        if (field_name := _unencodable_field(obj)) is not None:  # \ud800: no UTF-8 form, no Arrow string
            detail = f"line {line_no}: field {field_name!r} holds a lone surrogate (an unpaired \\ud800-\\udfff)"
            malformed.append({SOURCE_ROW: record, RAW_LINE: line.encode("utf-8", "backslashreplace").decode("utf-8"),
                              REASON: "bad_text", DETAIL: detail})
            continue
        if line_no in bad_by_line:
            flags[len(records)] = ("undecodable_bytes", _bad_byte_detail(bad_by_line[line_no]))
        records.append(obj)
        numbers.append(record)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame = frame.astype(object) if len(frame.columns) else frame
    frame = _attach_rows(frame, numbers, path)
    return RawTable(str(path), frame, flags, pd.DataFrame(malformed, columns=[SOURCE_ROW, RAW_LINE, REASON, DETAIL]))


def _read_parquet(path: Path) -> RawTable:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DataFileError(f"{path}: cannot read Parquet ({exc})") from exc
    frame = _attach_rows(frame.reset_index(drop=True), np.arange(1, len(frame) + 1), path)
    return RawTable(str(path), frame)


def read_table(path: str | Path) -> RawTable:
    """Read one CSV / TSV / JSONL / Parquet file into a RawTable (see the module docstring for the rules).

    Raises:
        DataFileError: the file does not exist, has an unknown suffix, or cannot be parsed at all.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        table = _read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    elif suffix in JSONL_SUFFIXES:
        table = _read_jsonl(path)
    elif suffix in PARQUET_SUFFIXES:
        table = _read_parquet(path)
    else:
        raise DataFileError(
            f"{path}: unknown file type {suffix!r}; use .csv, .tsv, .jsonl (one JSON object per line) or .parquet"
        )
    return table


def _attach_rows(frame: pd.DataFrame, numbers, path: Path) -> pd.DataFrame:
    """Add the `source_row` column, refusing a file that already has one."""
    if SOURCE_ROW in frame.columns:
        raise DataFileError(f"{path}: column name {SOURCE_ROW!r} is reserved by notellm; rename it")
    frame[SOURCE_ROW] = np.asarray(numbers, dtype=np.int64)
    return frame
