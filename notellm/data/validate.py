"""Validate raw notes and events into canonical frames; every bad row goes to a rejects frame with its reason.

Rules (each reject names the file, the 1-based row and the field):
- A required column missing from the file is fatal for the whole file (`DataFileError`).
- Notes: `missing_note_id`, `wrong_type` (a value of the wrong JSON/Parquet type), `bad_hashtags` (a `[`-prefixed
  cell that is not a JSON array of strings), `empty_text` (title AND content empty after stripping),
  `bad_timestamp` (an unparsable or out-of-range (years 1677-2262) optional `created_at`), `undecodable_bytes`,
  the service's field limits (data/limits.py): `bad_note_id` (whitespace only, control/bidi characters, over 512
  UTF-8 bytes, ending in `/related`), `bad_text` (an un-encodable lone surrogate), `too_long` (category over 1024
  bytes), `bad_hashtags` (over 64 tags or a tag over 100 characters), `bad_url` (an optional `url` column that is
  not an absolute http(s) URL of at most 2048 bytes), and `duplicate_note_id`: the FIRST row
  with an id is kept, every later row with the same id is rejected (the message names the row that was kept).
- Events: `missing_user_id`, `missing_note_id`, `unknown_note` (not among the accepted notes), `bad_timestamp`
  (ISO 8601, naive times read as UTC, or Unix seconds; missing counts as bad), `bad_weight` (not a finite number
  >= 0), `wrong_type`, `undecodable_bytes`.
- One reason per row: the first rule (in the order above) that fails.
- `on_bad_bytes="replace"` keeps rows with undecodable bytes (U+FFFD in place of the bytes) and counts them as
  `repaired_bytes` instead of rejecting them.
Event columns are checked with vectorised pandas operations (logs run to millions of rows); note cells are parsed
one by one (hashtag lists need it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from notellm.data import limits as L
from notellm.data import schema as S
from notellm.data.readers import DETAIL, RAW_LINE, REASON, SOURCE_ROW, DataFileError, RawTable

FIELD = "field"  # rejects column: which field failed
SOURCE_FILE = "source_file"  # rejects column (merged results only): the file a rejected row came from
BadBytes = Literal["reject", "replace"]
_NUMERIC_RE = r"[-+]?\d+(\.\d+)?"
_MIN_NS, _MAX_NS = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
URL_COLUMN = "url"  # the one extra column the service shows: a link, so http(s) only (it becomes <a href>)
_MIN_SECONDS, _MAX_SECONDS = _MIN_NS.value / 1e9, _MAX_NS.value / 1e9  # the years 1677-2262 of datetime64[ns]
_MS_THRESHOLD = 1e11  # Unix seconds above this are after year 5138: almost surely milliseconds


@dataclass
class Validated:
    """Accepted canonical rows, rejected original rows, and counts.

    Attributes:
        source: the input file.
        accepted: canonical frame (schema columns first, extra columns after).
        rejects: original cells as strings plus source_row, reason, field, detail.
        counts: {"accepted": n, "rejected": {reason: n}, "repaired_bytes": n}.
    """

    source: str
    accepted: pd.DataFrame
    rejects: pd.DataFrame
    counts: dict[str, Any] = field(default_factory=dict)

    def messages(self, limit: int = 20) -> list[str]:
        """Human-readable reject messages (file, row, field, detail), at most `limit`."""
        out = []
        for row in self.rejects.head(limit).itertuples(index=False):
            rec = row._asdict()
            where = f"field '{rec[FIELD]}'" if rec.get(FIELD) else "record"
            source = rec.get(SOURCE_FILE) or self.source
            out.append(f"{source} row {rec[SOURCE_ROW]} {where}: {rec[REASON]}: {rec[DETAIL]}")
        return out


class _Rejector:
    """Collects (reason, field, detail) per row; the first reason set for a row wins."""

    def __init__(self, n: int):
        self.reason = np.full(n, None, dtype=object)
        self.field = np.full(n, None, dtype=object)
        self.detail = np.full(n, None, dtype=object)

    @property
    def ok(self) -> np.ndarray:
        return pd.isna(self.reason)

    def add(self, mask: np.ndarray, reason: str, field_name: str, detail: Any) -> None:
        mask = np.asarray(mask, dtype=bool) & self.ok
        if not mask.any():
            return
        self.reason[mask] = reason
        self.field[mask] = field_name
        self.detail[mask] = detail[mask] if isinstance(detail, np.ndarray) else detail


def _require(table: RawTable, required: tuple[str, ...], kind: str) -> None:
    missing = [c for c in required if c not in table.frame.columns]
    if missing:
        found = [c for c in table.frame.columns if c != SOURCE_ROW]
        unparsed = ""
        if len(table.malformed):  # e.g. every record of a JSONL file was malformed: say why, not only "no columns"
            first = table.malformed.iloc[0]
            unparsed = (f" ({len(table.malformed)} record(s) could not be read; row {first[SOURCE_ROW]}: "
                        f"{first[REASON]}: {first[DETAIL]})")
        raise DataFileError(
            f"{table.source}: {kind} file is missing required column(s) {missing}; found {found}; "
            f"required: {list(required)}{unparsed}"
        )


def _ids(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Id cells as stripped strings. Returns (values, missing mask, wrong-type mask); ints are accepted."""
    n = len(series)
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype(str).to_numpy(dtype=object), np.zeros(n, bool), np.zeros(n, bool)
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        values = series.fillna("").str.strip().to_numpy(dtype=object)
        return values, values == "", np.zeros(n, bool)
    values = np.empty(n, dtype=object)
    missing = np.zeros(n, bool)
    wrong = np.zeros(n, bool)
    for i, v in enumerate(series.to_numpy(dtype=object)):
        if isinstance(v, str):
            values[i] = v.strip()
            missing[i] = values[i] == ""
        elif isinstance(v, (bool, np.bool_)):
            wrong[i] = True
        elif isinstance(v, (int, np.integer)):
            values[i] = str(int(v))
        elif isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer():
            values[i] = str(int(v))  # JSON numbers with missing values come back as floats
        elif v is None or (isinstance(v, float) and math.isnan(v)):
            missing[i] = True
        else:
            wrong[i] = True
    return values, missing, wrong


def _texts(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Text cells as strings ('' for missing). Returns (values, wrong-type mask)."""
    n = len(series)
    values = np.empty(n, dtype=object)
    wrong = np.zeros(n, bool)
    for i, v in enumerate(series.to_numpy(dtype=object)):
        if isinstance(v, str):
            values[i] = v
        elif v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            values[i] = ""
        else:
            values[i] = ""
            wrong[i] = True
    return values, wrong


def parse_hashtags(value: Any) -> list[str]:
    """One hashtags cell -> list of tags (stripped, empties and repeats dropped, order kept).

    Accepts a list/array of strings, a JSON array string (`["a", "b"]`) or a `|`-separated string (`a|b`).

    Raises:
        ValueError: the cell is a malformed JSON array or holds non-string tags.
        TypeError: the cell is neither a string nor a list.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a valid JSON array ({exc.msg}): {text[:60]!r}") from exc
            if not isinstance(value, list):
                raise ValueError(f"expected a JSON array, got {text[:60]!r}")
        else:
            value = text.split("|")
    if isinstance(value, (list, tuple, np.ndarray)):
        tags: list[str] = []
        for tag in value:
            if not isinstance(tag, str):
                raise ValueError(f"hashtags must be strings, got {tag!r}")
            tag = tag.strip()
            if tag and tag not in tags:
                tags.append(tag)
        return tags
    raise TypeError(f"expected a list or a string, got {type(value).__name__}")


def normalize_category(value: Any) -> str:
    """A category cell -> levels stripped and joined by '/' ('' when missing); a list of levels is joined.

    Raises:
        TypeError: the cell is neither a string nor a list of strings.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        levels = value.split(S.CATEGORY_SEPARATOR)
    elif isinstance(value, (list, tuple, np.ndarray)) and all(isinstance(v, str) for v in value):
        levels = list(value)
    else:
        raise TypeError(f"expected a string like 'a/b', got {type(value).__name__}")
    return S.CATEGORY_SEPARATOR.join(level.strip() for level in levels if level.strip())


def parse_timestamps(series: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse ISO 8601 strings (naive = UTC) or Unix seconds into UTC timestamps.

    Returns:
        (timestamps, missing, detail): datetime64[ns, UTC] values (NaT where missing or bad), a mask of empty
        cells, and per row None or the reason the cell could not be parsed.
    """
    n = len(series)
    out = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)  # NaT
    detail = np.full(n, None, dtype=object)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        ts = pd.to_datetime(series, utc=True)
        missing = ts.isna().to_numpy()
        return ts.dt.as_unit("ns"), missing, detail
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        numeric = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
        is_num = ~np.isnan(numeric)
        text = np.full(n, "", dtype=object)
        missing = ~is_num
    else:
        if series.dtype == object:  # mixed Python values (JSONL): missing -> "", anything else -> its text
            raw = series.to_numpy(dtype=object)
            series = pd.Series(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in raw])
        stripped = series.fillna("").astype("str").str.strip()  # vectorised string ops (logs are long)
        text = stripped.to_numpy(dtype=object)
        missing = (stripped == "").to_numpy(dtype=bool)
        is_num = stripped.str.fullmatch(_NUMERIC_RE).fillna(False).to_numpy(dtype=bool)
        numeric = np.full(n, np.nan)
        if is_num.any():
            numeric[is_num] = pd.to_numeric(pd.Series(text[is_num]), errors="coerce").to_numpy(dtype=float)
    if is_num.any():
        secs = numeric[is_num]
        too_big = np.abs(secs) > _MS_THRESHOLD
        # beyond datetime64[ns]: the cast would overflow to INT64_MIN, i.e. a silent NaT (issue #13, case 5)
        out_of_range = ~too_big & ((secs < _MIN_SECONDS) | (secs > _MAX_SECONDS))
        ok = ~too_big & ~out_of_range
        vals = np.full(len(secs), np.iinfo(np.int64).min, dtype=np.int64)
        vals[ok] = np.round(secs[ok] * 1e9).astype(np.int64)
        out[is_num] = vals
        bad_detail = np.full(len(secs), None, dtype=object)
        bad_detail[too_big] = "number too large for Unix seconds (milliseconds? divide by 1000)"
        bad_detail[out_of_range] = [f"Unix seconds {v:.0f} are outside the years 1677-2262"
                                    for v in secs[out_of_range]]
        detail[is_num] = bad_detail
    is_text = ~is_num & ~missing
    if is_text.any():
        parsed = pd.to_datetime(pd.Series(text[is_text]), format="ISO8601", utc=True, errors="coerce")
        in_range = (parsed >= _MIN_NS) & (parsed <= _MAX_NS)  # datetime64[ns] spans the years 1677-2262
        parsed = parsed.where(in_range)
        parsed_ns = parsed.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)
        out[is_text] = parsed_ns
        bad_text = parsed.isna().to_numpy()
        sub = np.full(int(is_text.sum()), None, dtype=object)
        why = "as ISO 8601 or Unix seconds within the years 1677-2262"
        sub[bad_text] = [f"cannot parse {t[:40]!r} {why}" for t in text[is_text][bad_text]]
        detail[is_text] = sub
    timestamps = pd.Series(pd.to_datetime(out, unit="ns", utc=True), index=series.index)
    return timestamps, missing, detail


def _arrow_safe(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Extra user columns with mixed Python types become JSON text so Parquet can store them."""
    for col in columns:
        try:
            pa.array(df[col].to_numpy(dtype=object), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            df[col] = [None if v is None else json.dumps(v, default=str) for v in df[col].to_numpy(dtype=object)]
    return df


def _rejects_frame(table: RawTable, rej: _Rejector) -> pd.DataFrame:
    """Original cells (as text) of the rejected rows plus source_row, reason, field, detail; malformed records too."""
    bad = ~rej.ok
    orig = table.frame.loc[bad].drop(columns=[SOURCE_ROW])
    orig = orig.map(
        lambda v: (
            ""
            if v is None or (isinstance(v, float) and math.isnan(v))
            else (json.dumps(list(v)) if isinstance(v, np.ndarray) else str(v))
        )
    )
    orig = orig.astype(object)
    orig.insert(0, SOURCE_ROW, table.frame.loc[bad, SOURCE_ROW].to_numpy())
    orig[REASON] = rej.reason[bad]
    orig[FIELD] = rej.field[bad]
    orig[DETAIL] = rej.detail[bad]
    if len(table.malformed):
        mal = table.malformed.copy()
        mal[FIELD] = ""
        orig = pd.concat([orig, mal], ignore_index=True)
        orig[RAW_LINE] = orig[RAW_LINE].fillna("") if RAW_LINE in orig else ""
    for col in orig.columns:
        if col != SOURCE_ROW:
            orig[col] = orig[col].fillna("").astype(str)
    return orig.sort_values(SOURCE_ROW, kind="stable").reset_index(drop=True)


def _counts(accepted: int, rejects: pd.DataFrame, repaired: int) -> dict[str, Any]:
    by_reason = rejects[REASON].value_counts().sort_index() if len(rejects) else pd.Series(dtype=int)
    return {
        "accepted": int(accepted),
        "rejected": {str(k): int(v) for k, v in by_reason.items()},
        "repaired_bytes": int(repaired),
    }


def _flag_bad_bytes(table: RawTable, rej: _Rejector, on_bad_bytes: BadBytes) -> int:
    if not table.flags:
        return 0
    if on_bad_bytes == "replace":
        return len(table.flags)
    mask = np.zeros(len(table.frame), bool)
    detail = np.full(len(table.frame), None, dtype=object)
    for pos, (_, text) in table.flags.items():
        mask[pos] = True
        detail[pos] = text
    rej.add(mask, "undecodable_bytes", "", detail)
    return 0


def _check_limits(rej: _Rejector, df: pd.DataFrame, ids, titles, contents, hashtags, categories) -> None:
    """Field limits of the service's backends (data/limits.py): ids, text encodability, category, hashtags, url."""
    n = len(df)

    def flag(values, check, reason: str, field_name: str) -> None:
        detail = np.full(n, None, dtype=object)
        for i, value in enumerate(values):
            if isinstance(value, str) and (problem := check(value)) is not None:
                detail[i] = f"{field_name} {problem}"
        rej.add(~pd.isna(detail), reason, field_name, detail)

    flag(ids, L.id_problem, "bad_note_id", S.NOTE_ID)
    flag(titles, L.text_problem, "bad_text", S.TITLE)
    flag(contents, L.text_problem, "bad_text", S.CONTENT)
    flag(categories, L.category_problem, "too_long", S.CATEGORY)
    tag_detail = np.array([L.hashtags_problem(tags) for tags in hashtags], dtype=object)
    rej.add(~pd.isna(tag_detail), "bad_hashtags", S.HASHTAGS, tag_detail)
    if URL_COLUMN in df.columns:
        urls, url_wrong = _texts(df[URL_COLUMN])
        rej.add(url_wrong, "wrong_type", URL_COLUMN, "url must be a string")
        flag([u.strip() or None for u in urls], L.url_problem, "bad_url", URL_COLUMN)


def validate_notes(table: RawTable, on_bad_bytes: BadBytes = "reject") -> Validated:
    """Check and canonicalise a notes table (rules in the module docstring).

    Raises:
        DataFileError: a required column is missing.
    """
    _require(table, S.NOTE_REQUIRED, "notes")
    df = table.frame
    n = len(df)
    rej = _Rejector(n)
    repaired = _flag_bad_bytes(table, rej, on_bad_bytes)

    ids, id_missing, id_wrong = _ids(df[S.NOTE_ID])
    rej.add(id_missing, "missing_note_id", S.NOTE_ID, "note_id is empty")
    rej.add(
        id_wrong,
        "wrong_type",
        S.NOTE_ID,
        np.array([f"note_id must be a string, got {v!r}"[:120] for v in df[S.NOTE_ID].to_numpy(object)], dtype=object),
    )
    titles, t_wrong = _texts(df[S.TITLE])
    contents, c_wrong = _texts(df[S.CONTENT])
    rej.add(t_wrong, "wrong_type", S.TITLE, "title must be a string")
    rej.add(c_wrong, "wrong_type", S.CONTENT, "content must be a string")

    hashtags = np.empty(n, dtype=object)
    categories = np.empty(n, dtype=object)
    tag_bad = np.full(n, None, dtype=object)
    tag_wrong = np.full(n, None, dtype=object)
    cat_wrong = np.full(n, None, dtype=object)
    for i, (tags, cat) in enumerate(
        zip(df[S.HASHTAGS].to_numpy(object), df[S.CATEGORY].to_numpy(object), strict=True)
    ):
        try:
            hashtags[i] = parse_hashtags(tags)
        except ValueError as exc:
            hashtags[i], tag_bad[i] = [], str(exc)
        except TypeError as exc:
            hashtags[i], tag_wrong[i] = [], str(exc)
        try:
            categories[i] = normalize_category(cat)
        except TypeError as exc:
            categories[i], cat_wrong[i] = "", str(exc)
    rej.add(~pd.isna(tag_wrong), "wrong_type", S.HASHTAGS, tag_wrong)
    rej.add(~pd.isna(tag_bad), "bad_hashtags", S.HASHTAGS, tag_bad)
    rej.add(~pd.isna(cat_wrong), "wrong_type", S.CATEGORY, cat_wrong)

    _check_limits(rej, df, ids, titles, contents, hashtags, categories)

    empty = np.array([not t.strip() and not c.strip() for t, c in zip(titles, contents, strict=True)], dtype=bool)
    rej.add(empty, "empty_text", f"{S.TITLE},{S.CONTENT}", "title and content are both empty")

    created = None
    if S.CREATED_AT in df.columns:
        created, _, ts_detail = parse_timestamps(df[S.CREATED_AT])
        rej.add(~pd.isna(ts_detail), "bad_timestamp", S.CREATED_AT, ts_detail)

    # Duplicates among rows still accepted: keep the first, reject later ones naming the kept row.
    ok = rej.ok
    id_series = pd.Series(ids, dtype=object).where(ok)
    dup = id_series.duplicated(keep="first").to_numpy() & ok
    if dup.any():
        first_row = dict(zip(id_series[ok & ~dup], df[SOURCE_ROW].to_numpy()[ok & ~dup], strict=True))
        detail = np.full(n, None, dtype=object)
        detail[dup] = [f"note_id {i!r} already seen at row {first_row[i]} (the first is kept)" for i in ids[dup]]
        rej.add(dup, "duplicate_note_id", S.NOTE_ID, detail)

    ok = rej.ok
    out = pd.DataFrame(
        {
            S.NOTE_ID: pd.Series(ids[ok], dtype=object).astype(str),
            S.TITLE: pd.Series(titles[ok], dtype=object).astype(str),
            S.CONTENT: pd.Series(contents[ok], dtype=object).astype(str),
            S.HASHTAGS: pd.Series(hashtags[ok], dtype=object),
            S.CATEGORY: pd.Series(categories[ok], dtype=object).astype(str),
        }
    )
    if created is not None:
        out[S.CREATED_AT] = created.to_numpy()[ok]
    extras = [c for c in df.columns if c not in out.columns and c not in S.NOTE_REQUIRED and c != SOURCE_ROW]
    for col in extras:
        out[col] = df[col].to_numpy(dtype=object)[ok]
    out = _arrow_safe(out, extras)
    rejects = _rejects_frame(table, rej)
    return Validated(table.source, out, rejects, _counts(len(out), rejects, repaired))


def validate_events(
    table: RawTable, known_note_ids: pd.Index | set | None, on_bad_bytes: BadBytes = "reject"
) -> Validated:
    """Check and canonicalise an events table; `known_note_ids` (accepted notes) catches `unknown_note`.

    Raises:
        DataFileError: a required column is missing.
    """
    _require(table, S.EVENT_REQUIRED, "events")
    df = table.frame
    n = len(df)
    rej = _Rejector(n)
    repaired = _flag_bad_bytes(table, rej, on_bad_bytes)

    users, u_missing, u_wrong = _ids(df[S.USER_ID])
    rej.add(u_missing, "missing_user_id", S.USER_ID, "user_id is empty")
    rej.add(u_wrong, "wrong_type", S.USER_ID, "user_id must be a string or an integer")
    notes, n_missing, n_wrong = _ids(df[S.NOTE_ID])
    rej.add(n_missing, "missing_note_id", S.NOTE_ID, "note_id is empty")
    rej.add(n_wrong, "wrong_type", S.NOTE_ID, "note_id must be a string or an integer")
    if known_note_ids is not None:
        known = pd.Index(list(known_note_ids) if isinstance(known_note_ids, set) else known_note_ids)
        unknown = ~pd.Index(notes).isin(known) & rej.ok
        detail = np.full(n, None, dtype=object)
        detail[unknown] = [f"note_id {v!r} is not among the accepted notes" for v in notes[unknown]]
        rej.add(unknown, "unknown_note", S.NOTE_ID, detail)

    timestamps, ts_missing, ts_detail = parse_timestamps(df[S.TIMESTAMP])
    ts_detail = ts_detail.copy()
    ts_detail[ts_missing] = "timestamp is empty"
    rej.add(~pd.isna(ts_detail), "bad_timestamp", S.TIMESTAMP, ts_detail)

    if S.ACTION in df.columns:
        col = df[S.ACTION]
        if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:
            actions = col.fillna("").str.strip().str.lower().to_numpy(dtype=object)
        else:
            actions, a_wrong = _texts(col)
            actions = np.array([a.strip().lower() for a in actions], dtype=object)
            rej.add(a_wrong, "wrong_type", S.ACTION, "action must be a string")
        actions[actions == ""] = S.DEFAULT_ACTION
    else:
        actions = np.full(n, S.DEFAULT_ACTION, dtype=object)

    if S.WEIGHT in df.columns:
        raw_w = df[S.WEIGHT]
        if pd.api.types.is_numeric_dtype(raw_w.dtype) and not pd.api.types.is_bool_dtype(raw_w.dtype):
            weights = raw_w.astype(float).fillna(1.0).to_numpy(copy=True)
            bad_w = ~np.isfinite(weights) | (weights < 0)
        else:
            text = raw_w.to_numpy(dtype=object)
            blank = np.array(
                [
                    v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v))
                    for v in text
                ],
                dtype=bool,
            )
            is_bool = np.array([isinstance(v, (bool, np.bool_)) for v in text], dtype=bool)
            weights = pd.to_numeric(pd.Series(np.where(blank | is_bool, np.nan, text)), errors="coerce").to_numpy(
                dtype=float, copy=True
            )
            weights[blank] = 1.0
            bad_w = is_bool | ~np.isfinite(weights) | (weights < 0)
        detail = np.full(n, None, dtype=object)
        detail[bad_w] = [
            f"weight must be a finite number >= 0, got {v!r}"[:120] for v in raw_w.to_numpy(object)[bad_w]
        ]
        rej.add(bad_w, "bad_weight", S.WEIGHT, detail)
    else:
        weights = np.ones(n)

    ok = rej.ok
    out = pd.DataFrame(
        {
            S.USER_ID: pd.Series(users[ok], dtype=object).astype(str),
            S.NOTE_ID: pd.Series(notes[ok], dtype=object).astype(str),
            S.TIMESTAMP: timestamps.to_numpy()[ok],
            S.ACTION: pd.Series(actions[ok], dtype=object).astype(str),
            S.WEIGHT: weights[ok].astype(np.float64),
        }
    )
    extras = [c for c in df.columns if c not in out.columns and c != SOURCE_ROW]
    for col in extras:
        out[col] = df[col].to_numpy(dtype=object)[ok]
    out = _arrow_safe(out, extras)
    rejects = _rejects_frame(table, rej)
    return Validated(table.source, out, rejects, _counts(len(out), rejects, repaired))
