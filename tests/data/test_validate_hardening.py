"""Issue #13 cases 4, 5 and 7 at import: urls, timestamp ranges and field limits all become named rejects."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from notellm.data.readers import read_table
from notellm.data.validate import parse_timestamps, validate_events, validate_notes


def _validate_jsonl(tmp_path, rows: list[dict], name: str = "notes.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return validate_notes(read_table(path)), str(path)


def _note(note_id: str, **fields) -> dict:
    return {"note_id": note_id, "title": "t", "content": "c", "hashtags": "a", "category": "x", **fields}


def _only_reject(validated, row: int) -> dict:
    rows = validated.rejects[validated.rejects["source_row"] == row]
    assert len(rows) == 1, validated.rejects
    return rows.iloc[0].to_dict()


@pytest.mark.parametrize("url", ["javascript:alert(document.domain)", "JaVaScRiPt:alert(1)", "data:text/html,x",
                                 "https://ok.org/a b", "//evil.org/x", "https://" + "a" * 2050])
def test_urls_other_than_http_are_rejected_at_import(tmp_path, url):
    validated, path = _validate_jsonl(tmp_path, [_note("good", url="https://ok.org/q/1"), _note("bad", url=url)])
    assert list(validated.accepted["note_id"]) == ["good"]
    reject = _only_reject(validated, 2)
    assert reject["reason"] == "bad_url" and reject["field"] == "url"
    assert any(path in m and "row 2" in m and "'url'" in m for m in validated.messages())


@pytest.mark.parametrize("value", ["9300000000", "-9300000000", "99999999999", "1e11"])
def test_far_timestamps_are_rejected_not_nat(value):
    timestamps, missing, detail = parse_timestamps(pd.Series([value, "1700000000"]))
    assert not missing[0] and detail[0] is not None and "1677-2262" in detail[0]
    assert detail[1] is None and timestamps[1] == pd.Timestamp(1700000000, unit="s", tz="UTC")


def test_far_timestamps_in_files_name_the_row_and_field(tmp_path):
    validated, _ = _validate_jsonl(tmp_path, [_note("a", created_at=1700000000), _note("b", created_at=9.3e9)])
    assert list(validated.accepted["note_id"]) == ["a"]
    assert _only_reject(validated, 2)["field"] == "created_at"
    events = tmp_path / "events.csv"
    events.write_text("user_id,note_id,timestamp\nu,a,1700000000\nu,a,9300000000\nu,a,-9300000000\n",
                      encoding="utf-8")
    checked = validate_events(read_table(events), None)
    assert len(checked.accepted) == 1 and not checked.accepted["timestamp"].isna().any()
    assert set(checked.rejects["field"]) == {"timestamp"} and len(checked.rejects) == 2


@pytest.mark.parametrize(("row", "field"), [
    (_note("   "), "note_id"),
    (_note("a\u202eb"), "note_id"),  # right-to-left override
    (_note("a\x07b"), "note_id"),
    (_note("x" * 513), "note_id"),
    (_note("é" * 300), "note_id"),  # 600 UTF-8 bytes > the 512-byte column
    (_note("q/related"), "note_id"),  # would be shadowed by GET /notes/{id}/related
    (_note("ok", category="c" * 1025), "category"),
    (_note("ok", hashtags="#" + "h" * 101), "hashtags"),
    (_note("ok", hashtags=" ".join(f"t{i}" for i in range(65))), "hashtags"),
])
def test_field_limits_are_named_rejects(tmp_path, row, field):
    validated, _ = _validate_jsonl(tmp_path, [_note("fine"), row])
    assert list(validated.accepted["note_id"]) == ["fine"]
    assert _only_reject(validated, 2)["field"] == field
