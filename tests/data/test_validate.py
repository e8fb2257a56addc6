"""Validation: each reject reason, its message (file, row, field) and the first-id-wins duplicate rule.

PYTHONPATH=. python -m pytest tests/data/test_validate.py -q
"""

from __future__ import annotations

import pandas as pd
import pytest

from notellm.data.readers import DataFileError, read_table
from notellm.data.validate import parse_hashtags, parse_timestamps, validate_events, validate_notes

NOTES_HEADER = "note_id,title,content,hashtags,category\n"
EVENTS_HEADER = "user_id,note_id,timestamp,action,weight\n"


def _notes(tmp_path, body: str, name: str = "notes.csv"):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return validate_notes(read_table(path)), str(path)


def _reject(validated, row: int) -> dict:
    rows = validated.rejects[validated.rejects["source_row"] == row]
    assert len(rows) == 1, f"row {row} not rejected exactly once: {validated.rejects}"
    return rows.iloc[0].to_dict()


def test_missing_required_column_is_fatal_and_named(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("note_id,title,content\n1,a,b\n", encoding="utf-8")
    with pytest.raises(DataFileError) as err:
        validate_notes(read_table(path))
    assert str(path) in str(err.value) and "['hashtags', 'category']" in str(err.value)
    events = tmp_path / "events.csv"
    events.write_text("user_id,note_id\nu,1\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"events file is missing required column\(s\) \['timestamp'\]"):
        validate_events(read_table(events), None)


def test_duplicate_note_id_keeps_first(tmp_path):
    v, path = _notes(tmp_path, NOTES_HEADER + "a,First,x,,c\nb,Other,y,,c\na,Second,z,,c\n")
    assert list(v.accepted["title"]) == ["First", "Other"]
    rej = _reject(v, 3)
    assert rej["reason"] == "duplicate_note_id" and rej["field"] == "note_id"
    assert rej["title"] == "Second"  # the original row is kept in the rejects
    assert v.messages() == [
        f"{path} row 3 field 'note_id': duplicate_note_id: note_id 'a' already seen at row 1 (the first is kept)"
    ]


def test_empty_title_and_content_rejected_but_either_alone_is_fine(tmp_path):
    v, path = _notes(tmp_path, NOTES_HEADER + "1,,body only,,c\n2,title only,,,c\n3,  , ,,c\n")
    assert list(v.accepted["note_id"]) == ["1", "2"]
    rej = _reject(v, 3)
    assert rej["reason"] == "empty_text" and rej["field"] == "title,content"
    assert v.messages()[0].startswith(f"{path} row 3 field 'title,content': empty_text")


def test_missing_id_and_bad_hashtags(tmp_path):
    v, _ = _notes(tmp_path, NOTES_HEADER + ',T,C,,c\n2,T,C,"[""a"", 3]",c\n3,T,C,"[oops",c\n')
    assert _reject(v, 1)["reason"] == "missing_note_id"
    assert _reject(v, 2)["reason"] == "bad_hashtags" and "must be strings" in _reject(v, 2)["detail"]
    assert _reject(v, 3)["field"] == "hashtags"
    assert v.counts == {"accepted": 0, "rejected": {"bad_hashtags": 2, "missing_note_id": 1}, "repaired_bytes": 0}


def test_wrong_types_in_jsonl(tmp_path):
    body = (
        '{"note_id": 1.5, "title": "T", "content": "C", "hashtags": [], "category": "c"}\n'
        '{"note_id": "2", "title": ["T"], "content": "C", "hashtags": [], "category": "c"}\n'
        '{"note_id": "3", "title": "T", "content": "C", "hashtags": 7, "category": "c"}\n'
        '{"note_id": "4", "title": "T", "content": "C", "hashtags": [], "category": {"a": 1}}\n'
        '{"note_id": "5", "title": "T", "content": "C", "hashtags": [], "category": ["a", "b"]}\n'
    )
    v, path = _notes(tmp_path, body, "notes.jsonl")
    assert [(_reject(v, r)["reason"], _reject(v, r)["field"]) for r in (1, 2, 3, 4)] == [
        ("wrong_type", "note_id"),
        ("wrong_type", "title"),
        ("wrong_type", "hashtags"),
        ("wrong_type", "category"),
    ]
    assert v.accepted.loc[0, "category"] == "a/b"  # a list of levels is joined
    assert f"{path} row 2 field 'title': wrong_type: title must be a string" in v.messages()


def test_undecodable_row_rejected_or_repaired(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_bytes((NOTES_HEADER + "1,ok,x,,c\n").encode() + b"2,caf\xe9,x,,c\n")
    v = validate_notes(read_table(path))
    assert list(v.accepted["note_id"]) == ["1"]
    rej = _reject(v, 2)
    assert rej["reason"] == "undecodable_bytes" and "line 3" in rej["detail"]
    repaired = validate_notes(read_table(path), on_bad_bytes="replace")
    assert list(repaired.accepted["title"]) == ["ok", "caf\ufffd"]
    assert repaired.counts["repaired_bytes"] == 1


def test_created_at_parsed_and_bad_rejected(tmp_path):
    v, _ = _notes(
        tmp_path,
        "note_id,title,content,hashtags,category,created_at\n"
        "1,T,C,,c,2024-05-01T10:00:00Z\n2,T,C,,c,\n3,T,C,,c,yesterday\n",
    )
    assert v.accepted.loc[0, "created_at"] == pd.Timestamp("2024-05-01T10:00:00Z")
    assert pd.isna(v.accepted.loc[1, "created_at"])  # optional: empty is fine
    assert _reject(v, 3)["reason"] == "bad_timestamp"


def test_events_reasons_and_messages(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        EVENTS_HEADER
        + "\n".join(
            [
                "u1,a,2024-01-01T00:00:00,,",  # 1 ok: action defaults to click, weight to 1
                "u1,zzz,2024-01-01T00:00:00,click,1",  # 2 unknown note
                ",a,2024-01-01T00:00:00,click,1",  # 3 missing user
                "u2,a,not a time,click,1",  # 4 bad timestamp
                "u2,a,1700000000000,click,1",  # 5 milliseconds
                "u2,a,1700000000,LIKE,2.5",  # 6 ok: Unix seconds, action lower-cased
                "u2,a,2024-01-01,click,heavy",  # 7 bad weight
                "u2,a,,click,1",  # 8 empty timestamp
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    v = validate_events(read_table(path), pd.Index(["a", "b"]))
    assert list(v.accepted["action"]) == ["click", "like"]
    assert list(v.accepted["weight"]) == [1.0, 2.5]
    assert v.accepted.loc[1, "timestamp"] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")
    assert {r: _reject(v, r)["reason"] for r in (2, 3, 4, 5, 7, 8)} == {
        2: "unknown_note",
        3: "missing_user_id",
        4: "bad_timestamp",
        5: "bad_timestamp",
        7: "bad_weight",
        8: "bad_timestamp",
    }
    assert "milliseconds" in _reject(v, 5)["detail"]
    messages = v.messages()
    assert messages[0] == f"{path} row 2 field 'note_id': unknown_note: note_id 'zzz' is not among the accepted notes"
    assert v.counts["accepted"] + sum(v.counts["rejected"].values()) == 8


def test_parse_hashtags_forms():
    assert parse_hashtags('["a", " b ", "a"]') == ["a", "b"]
    assert parse_hashtags("a|b") == ["a", "b"]
    assert parse_hashtags(None) == [] and parse_hashtags("") == []
    with pytest.raises(ValueError, match="JSON array"):
        parse_hashtags("[a")
    with pytest.raises(TypeError):
        parse_hashtags(3)


def test_parse_timestamps_mixed_forms():
    ts, missing, detail = parse_timestamps(pd.Series(["2024-01-01T00:00:00+02:00", "86400", "", "soon"]))
    assert ts[0] == pd.Timestamp("2023-12-31T22:00:00Z")  # converted to UTC
    assert ts[1] == pd.Timestamp("1970-01-02", tz="UTC")
    assert list(missing) == [False, False, True, False]
    assert detail[3].startswith("cannot parse 'soon'")
