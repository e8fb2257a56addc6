"""The service's Note <-> plain-dict form, shared by the WAL, the snapshots, Milvus rows and the API.

A leaf module (imports only the data model), so every serve module can use it without an import cycle.
"""

from __future__ import annotations

from notellm.data.limits import url_problem
from notellm.data.schema import Note

URL = "url"  # the one extra field the service keeps: a link to the note's source (attribution, e.g. Stack Exchange)


def note_url(note: Note) -> str:
    """The note's source link if it is an absolute http(s) URL, else "" (never a `javascript:` link: data
    imported before urls were validated, or written to an index by other tools, is filtered here too)."""
    value = note.extra.get(URL) if note.extra else None
    return value if isinstance(value, str) and value and url_problem(value) is None else ""


def note_to_dict(note: Note) -> dict:
    """A note as plain JSON-able fields (the WAL and API share this form)."""
    return {"note_id": note.note_id, "title": note.title, "content": note.content,
            "hashtags": list(note.hashtags), "category": note.category, URL: note_url(note)}


def note_from_dict(data: dict) -> Note:
    url = data.get(URL)
    url = url if isinstance(url, str) and url and url_problem(url) is None else ""
    return Note(note_id=str(data["note_id"]), title=str(data.get("title", "")), content=str(data.get("content", "")),
                hashtags=tuple(str(t) for t in data.get("hashtags", ())), category=str(data.get("category", "")),
                extra={URL: url} if url else {})
