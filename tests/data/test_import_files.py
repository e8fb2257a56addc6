"""`import_files` end to end: the folder, rejects file, manifest, nothing good lost, clean re-runs; store API.

PYTHONPATH=. python -m pytest tests/data/test_import_files.py -q
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from notellm.data.artifacts import sha256_file
from notellm.data.readers import DataFileError
from notellm.data.schema import Note
from notellm.data.store import (
    frame_to_notes,
    import_files,
    load_events,
    load_links,
    load_notes,
    load_pairs,
    notes_to_frame,
    read_manifest,
)


@pytest.fixture
def user_files(tmp_path):
    notes = tmp_path / "my_notes.csv"
    notes.write_bytes(
        b"note_id,title,content,hashtags,category,likes\n"
        b"n1,Citra hops,What are they?,hops|ipa,beer/hops,3\n"
        b'n2,Lager history,When was lager invented?,"[""history""]",beer/history,5\n'
        b"n1,Duplicate,dup,,beer,1\n"
        b"n3,,,,beer,0\n"
        b"n4,Caf\xe9,latin-1,,coffee,2\n"
        b"n5,Espresso,grind size?,,coffee,9\n"
    )
    events = tmp_path / "my_events.jsonl"
    events.write_text(
        "\n".join(
            [
                '{"user_id": "u1", "note_id": "n1", "timestamp": "2024-01-01T10:00:00Z", "action": "view"}',
                '{"user_id": "u1", "note_id": "n2", "timestamp": 1704103260, "action": "click"}',
                '{"user_id": "u2", "note_id": "n3", "timestamp": "2024-01-01T10:00:00Z"}',
                '{"user_id": "u2", "note_id": "n5", "timestamp": "2024-01-01T10:05:00Z", "weight": 2}',
                '{"user_id": "u2", "note_id": "n5", "timestamp": "bad"}',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return notes, events


def test_import_writes_folder_rejects_and_manifest(tmp_path, user_files):
    notes_path, events_path = user_files
    out = tmp_path / "data"
    report = import_files(notes_path, events_path, out)

    notes = load_notes(out)
    assert list(notes["note_id"]) == ["n1", "n2", "n5"]
    assert notes.loc[0, "hashtags"] == ["hops", "ipa"] and notes.loc[1, "hashtags"] == ["history"]
    assert list(notes["likes"]) == ["3", "5", "9"]  # extra column kept
    events = load_events(out)
    assert list(events["note_id"]) == ["n1", "n2", "n5"]
    assert str(events["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert list(events["weight"]) == [1.0, 1.0, 2.0]

    rejects = pd.read_parquet(out / "rejects" / "notes.parquet")
    assert list(rejects["source_row"]) == [3, 4, 5]
    assert list(rejects["reason"]) == ["duplicate_note_id", "empty_text", "undecodable_bytes"]
    assert rejects.loc[0, "title"] == "Duplicate" and rejects.loc[0, "likes"] == "1"  # the original row
    assert (out / "rejects" / "notes.csv").is_file()
    ev_rejects = pd.read_parquet(out / "rejects" / "events.parquet")
    assert list(ev_rejects["reason"]) == ["unknown_note", "bad_timestamp"]  # n3 was rejected as a note

    # Nothing good is lost: accepted + rejected = input rows, per file.
    assert len(notes) + len(rejects) == 6 and len(events) + len(ev_rejects) == 5

    manifest = read_manifest(out)
    assert manifest["counts"] == {"notes": 3, "events": 3, "users": 2}
    assert manifest["rejected"] == {
        "notes": {"duplicate_note_id": 1, "empty_text": 1, "undecodable_bytes": 1},
        "events": {"bad_timestamp": 1, "unknown_note": 1},
    }
    assert [s["sha256"] for s in manifest["sources"]] == [sha256_file(notes_path), sha256_file(events_path)]
    assert manifest["files"]["notes.parquet"] == {"rows": 3, "sha256": sha256_file(out / "notes.parquet")}
    assert report.rejected == manifest["rejected"]
    assert any("row 3 field 'note_id': duplicate_note_id" in m for m in report.messages)
    assert load_links(out) is None
    assert not list(out.glob("**/*.tmp"))  # atomic writes leave no temp files


def test_rerun_overwrites_and_removes_stale_files(tmp_path, user_files):
    notes_path, events_path = user_files
    out = tmp_path / "data"
    import_files(notes_path, events_path, out)
    (out / "pairs.parquet").write_text("stale")
    clean = tmp_path / "clean.csv"
    clean.write_text("note_id,title,content,hashtags,category\nx,T,C,,c\n", encoding="utf-8")
    import_files(clean, None, out)
    assert list(load_notes(out)["note_id"]) == ["x"]
    assert not (out / "pairs.parquet").exists() and not (out / "events.parquet").exists()
    assert not (out / "rejects" / "notes.parquet").exists()
    assert json.loads((out / "manifest.json").read_text())["counts"] == {"notes": 1}


def test_missing_file_and_folder_errors(tmp_path, user_files):
    with pytest.raises(DataFileError, match="file not found"):
        import_files(tmp_path / "nope.csv", None, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="not a notellm data folder"):
        read_manifest(tmp_path)
    notes_path, _ = user_files
    import_files(notes_path, None, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="notellm mine"):
        load_pairs(tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="without events"):
        load_events(tmp_path / "out")


def test_notes_frame_round_trip():
    notes = [Note("a", "T", "C", ("x", "y"), "beer/hops", extra={"url": "u"}), Note("b", "T2", "C2")]
    frame = notes_to_frame(notes)
    assert list(frame.columns) == ["note_id", "title", "content", "hashtags", "category", "url"]
    back = frame_to_notes(frame)
    assert back == notes  # extra is excluded from equality
    assert back[0].extra == {"url": "u"} and back[0].category_levels == ("beer", "hops")
    assert list(notes_to_frame([]).columns) == ["note_id", "title", "content", "hashtags", "category"]


def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    from notellm.data import artifacts

    target = tmp_path / "notes.parquet"
    artifacts.write_parquet(pd.DataFrame({"a": [1]}), target)

    def crash(self, path, **kwargs):  # the write dies half way
        path.write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash)
    with pytest.raises(KeyboardInterrupt):
        artifacts.write_parquet(pd.DataFrame({"a": [2]}), target)
    monkeypatch.undo()
    assert pd.read_parquet(target)["a"].tolist() == [1]  # the previous complete file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["notes.parquet"]
