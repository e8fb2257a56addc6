"""Readers: CSV (JSON-array and |-separated hashtags), TSV, JSONL, Parquet; bad bytes and malformed records.

PYTHONPATH=. python -m pytest tests/data/test_readers.py -q
"""

from __future__ import annotations

import pandas as pd
import pytest

from notellm.data.readers import DataFileError, read_table
from notellm.data.validate import validate_notes

HEADER = "note_id,title,content,hashtags,category\n"


def test_csv_with_json_array_hashtags(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text(HEADER + '007,Hops,"About hops, really","[""ipa"", ""hops""]",beer/brewing\n', encoding="utf-8")
    notes = validate_notes(read_table(path)).accepted
    assert notes.loc[0, "note_id"] == "007"  # read as text: the leading zeros survive
    assert notes.loc[0, "hashtags"] == ["ipa", "hops"]
    assert notes.loc[0, "category"] == "beer/brewing"
    assert notes.loc[0, "content"] == "About hops, really"


def test_csv_with_pipe_separated_hashtags_and_multiline_cell(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text(HEADER + '1,T,"line one\nline two",ipa| hops ||ipa,beer\n2,U,c,,beer\n', encoding="utf-8")
    table = read_table(path)
    assert list(table.frame["source_row"]) == [1, 2]
    notes = validate_notes(table).accepted
    assert notes.loc[0, "hashtags"] == ["ipa", "hops"]  # stripped, empties and repeats dropped
    assert notes.loc[0, "content"] == "line one\nline two"
    assert notes.loc[1, "hashtags"] == []


def test_tsv(tmp_path):
    path = tmp_path / "notes.tsv"
    path.write_text("note_id\ttitle\tcontent\thashtags\tcategory\n1\tT\tC\ta|b\tx\n", encoding="utf-8")
    assert validate_notes(read_table(path)).accepted.loc[0, "hashtags"] == ["a", "b"]


def test_jsonl_keeps_types_and_extras(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text(
        '{"note_id": 12, "title": "T", "content": "C", "hashtags": ["a"], "category": "x", "likes": 5}\n\n'
        '{"note_id": "n2", "title": "T2", "content": "", "hashtags": "a|b", "category": "x", "likes": 7}\n',
        encoding="utf-8",
    )
    notes = validate_notes(read_table(path)).accepted
    assert list(notes["note_id"]) == ["12", "n2"]
    assert list(notes["likes"]) == [5, 7]
    assert notes.loc[1, "hashtags"] == ["a", "b"]


def test_parquet_with_list_hashtags(tmp_path):
    path = tmp_path / "notes.parquet"
    pd.DataFrame(
        {
            "note_id": ["a", "b"],
            "title": ["T", "U"],
            "content": ["C", "D"],
            "hashtags": [["x", "y"], []],
            "category": ["k", "k/l"],
        }
    ).to_parquet(path)
    notes = validate_notes(read_table(path)).accepted
    assert notes.loc[0, "hashtags"] == ["x", "y"]
    assert notes.loc[1, "category"] == "k/l"


def test_bom_is_skipped(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "1,T,C,,x\n").encode())
    assert list(read_table(path).frame.columns[:1]) == ["note_id"]


def test_undecodable_bytes_flag_only_their_row_with_offset(tmp_path):
    path = tmp_path / "notes.csv"
    good = (HEADER + "1,Good,fine,,x\n").encode()
    bad = b"2,Caf\xe9,latin-1 byte,,x\n"
    path.write_bytes(good + bad + b"3,Also good,ok,,x\n")
    table = read_table(path)
    assert len(table.frame) == 3  # every row decoded
    assert list(table.flags) == [1]
    reason, detail = table.flags[1]
    assert reason == "undecodable_bytes"
    assert f"offset {len(good) + 5}" in detail and "line 3" in detail and "0xe9" in detail


def test_undecodable_bytes_in_jsonl(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_bytes(b'{"note_id": "1", "title": "ok"}\n{"note_id": "2", "title": "\xff"}\n')
    table = read_table(path)
    assert list(table.flags) == [1]
    assert "line 2" in table.flags[1][1]


def test_malformed_csv_record_is_isolated(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text(HEADER + "1,T,C,,x\n2,T,C,,x,EXTRA\n3,T,C,,x\n", encoding="utf-8")
    table = read_table(path)
    assert list(table.frame["note_id"]) == ["1", "3"]
    assert table.malformed.loc[0, "source_row"] == 2
    assert table.malformed.loc[0, "reason"] == "malformed_row"
    assert "6 fields, header has 5" in table.malformed.loc[0, "detail"]


def test_malformed_json_line_is_isolated(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"note_id": "1"}\n{"note_id": \n[1, 2]\n{"note_id": "4"}\n', encoding="utf-8")
    table = read_table(path)
    assert list(table.frame["note_id"]) == ["1", "4"]
    assert list(table.frame["source_row"]) == [1, 4]
    assert list(table.malformed["reason"]) == ["malformed_json", "malformed_json"]
    assert "line 3: expected a JSON object" in table.malformed.loc[1, "detail"]


def test_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "notes.xlsx").write_text("x")
    with pytest.raises(DataFileError, match="unknown file type '.xlsx'"):
        read_table(tmp_path / "notes.xlsx")
    with pytest.raises(DataFileError, match="file not found"):
        read_table(tmp_path / "nope.csv")


def test_reserved_column_name(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("note_id,source_row\n1,2\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="reserved"):
        read_table(path)


def test_empty_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataFileError, match="empty file"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text(HEADER)
    assert len(validate_notes(read_table(tmp_path / "header.csv")).accepted) == 0
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataFileError, match="missing required column"):
        validate_notes(read_table(tmp_path / "empty.jsonl"))
