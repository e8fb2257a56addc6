"""Issue #13 case 11: imports reject bad rows instead of aborting, and never overwrite a folder in place."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_stackexchange import MINI_COMMENTS, MINI_POSTS  # noqa: E402

from notellm.data.importing import import_files  # noqa: E402
from notellm.data.readers import DataFileError, read_table  # noqa: E402
from notellm.data.stackexchange import import_stackexchange  # noqa: E402
from notellm.data.store import load_notes  # noqa: E402

HEADER = "note_id,title,content,hashtags,category\n"


def test_a_field_over_the_csv_limit_is_a_rejected_row(tmp_path):
    path = tmp_path / "notes.csv"
    # a row with too many fields sends pandas to the record-by-record reader, where one field is over csv's
    # 131,072-byte limit
    path.write_text(HEADER + 'a,ok,"x",t,c\nb,"' + "y" * 140_000 + '",c,t,c\nc,x,y,z,t,extra\nd,fine,w,t,c\n',
                    encoding="utf-8")
    table = read_table(path)
    assert list(table.frame["note_id"]) == ["a", "d"]
    assert list(table.malformed["source_row"]) == [2, 3]
    assert "field larger than" in table.malformed["detail"].iloc[0] and "line 3" in table.malformed["detail"].iloc[0]


def test_an_unparsable_link_date_rejects_that_link(tmp_path):
    site = tmp_path / "brew.stackexchange.com"
    site.mkdir()
    (site / "Posts.xml").write_text(MINI_POSTS, encoding="utf-8")
    (site / "Comments.xml").write_text(MINI_COMMENTS, encoding="utf-8")
    (site / "PostLinks.xml").write_text("""<?xml version="1.0" encoding="utf-8"?>
<postlinks>
  <row Id="1" CreationDate="2020-01-03T00:00:00.000" PostId="3" RelatedPostId="1" LinkTypeId="3" />
  <row Id="2" CreationDate="yesterday" PostId="1" RelatedPostId="3" LinkTypeId="1" />
</postlinks>
""", encoding="utf-8")
    report = import_stackexchange([site], tmp_path / "out")
    assert report.counts["links"] == 1 and report.rejected["links"] == {"bad_timestamp": 1}
    assert any("PostLinks.xml row 2 field 'created_at'" in m for m in report.messages), report.messages


@pytest.fixture
def notes_csv(tmp_path):
    path = tmp_path / "in" / "notes.csv"
    path.parent.mkdir()
    path.write_text(HEADER + "a,first,x,t,c\n", encoding="utf-8")
    return path


def test_out_refuses_a_foreign_folder_and_the_input_folder(notes_csv, tmp_path):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(DataFileError, match="not a notellm data folder"):
        import_files(notes_csv, None, foreign)
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"]
    with pytest.raises(DataFileError, match="input"):
        import_files(notes_csv, None, notes_csv.parent)
    assert notes_csv.is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    import_files(notes_csv, None, empty)  # an empty folder is fine
    import_files(notes_csv, None, empty)  # and so is re-importing into a notellm data folder


def test_a_crash_mid_import_leaves_the_previous_folder_whole(notes_csv, tmp_path, monkeypatch):
    out = tmp_path / "data"
    import_files(notes_csv, None, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    notes_csv.write_text(HEADER + "b,second,y,t,c\n", encoding="utf-8")
    import notellm.data.importing as importing

    def dies(*args, **kwargs):
        raise KeyboardInterrupt("killed before the manifest")

    monkeypatch.setattr(importing, "write_json", dies)
    with pytest.raises(KeyboardInterrupt):
        import_files(notes_csv, None, out)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert list(load_notes(out)["note_id"]) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "in"]  # no temp folder left
