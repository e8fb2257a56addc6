"""The one Note <-> dict codec (data/schema.py): round trips, extras selection, missing cells, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from notellm.data.schema import Note
from notellm.data.store import frame_to_notes, notes_to_frame


def test_round_trip_keeps_every_field_and_extra():
    note = Note("n1", "Title", "Body", ("a", "b"), "beer/brewing", extra={"url": "https://x", "score": 3})
    assert note.to_dict() == {"note_id": "n1", "title": "Title", "content": "Body", "hashtags": ["a", "b"],
                              "category": "beer/brewing", "url": "https://x", "score": 3}
    back = Note.from_dict(note.to_dict())
    assert back == note and back.extra == note.extra


def test_named_extras_only_and_defaults():
    note = Note("n1", "T", "C", extra={"url": "u", "secret": 1})
    assert "secret" not in note.to_dict(extra=["url", "absent"]) and note.to_dict(extra=["url"])["url"] == "u"
    sparse = Note.from_dict({"note_id": 7, "hashtags": np.array(["x"]), "url": "u", "other": 2}, extra=["url"])
    assert (sparse.note_id, sparse.title, sparse.hashtags, sparse.category, sparse.extra) == ("7", "", ("x",), "",
                                                                                               {"url": "u"})
    assert Note.from_dict({"note_id": "z", "hashtags": float("nan")}).hashtags == ()
    with pytest.raises(ValueError, match="list of strings, got the string"):
        Note.from_dict({"note_id": "z", "hashtags": '["a"]'})
    with pytest.raises(ValueError, match="needs a 'note_id'"):
        Note.from_dict({"title": "no id"})


def test_frame_round_trip_uses_the_codec():
    notes = [Note("a", "t1", "c1", ("x",), "cat", extra={"url": "u1"}),
             Note("b", "t2", "c2", (), "", extra={"url": "u2"})]
    frame = notes_to_frame(notes)
    assert list(frame.columns) == ["note_id", "title", "content", "hashtags", "category", "url"]
    back = frame_to_notes(frame)
    assert back == notes and [n.extra for n in back] == [{"url": "u1"}, {"url": "u2"}]
    assert frame_to_notes(pd.DataFrame({"note_id": ["q"], "title": ["t"], "content": ["c"], "hashtags": [None],
                                        "category": ["k"]}))[0].hashtags == ()
