"""Field limits shared by import validation, the HTTP schemas and the Milvus columns, and the checks that apply them.

One place, so a row the importer accepts always fits the service's backends (Milvus VARCHAR columns count UTF-8
bytes: note_id 512, category 1024, url 2048, title/content/hashtags-as-JSON 65,535) and an id never collides with
a route. Each check returns None when the value is fine, else a short reason for the reject message.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

MAX_NOTE_ID_BYTES = 512
MAX_CATEGORY_BYTES = 1024
MAX_URL_BYTES = 2048
MAX_TEXT_BYTES = 65535  # title, content and the hashtag list (as JSON) in Milvus
MAX_HASHTAG_CHARS = 100
MAX_HASHTAGS = 64
MAX_VOCABULARY = 1024  # /generate: constraint list entries
RESERVED_ID_SUFFIXES = ("/related",)  # GET /notes/{id}/related would shadow GET /notes/{id}
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def text_problem(text: str) -> str | None:
    """Text that cannot be encoded as UTF-8 (a lone surrogate) cannot be tokenised, stored or logged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds an un-encodable character {text[exc.start]!r} at position {exc.start}"
    return None


def id_problem(note_id: str) -> str | None:
    """Why `note_id` is not a usable note id (whitespace only, control/bidi/format characters, too long, a route)."""
    if not note_id.strip():
        return "is empty or whitespace only"
    if (bad := text_problem(note_id)) is not None:
        return bad
    for position, ch in enumerate(note_id):
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cf"):
            return f"holds the control/format character U+{ord(ch):04X} at position {position}"
    if utf8_len(note_id) > MAX_NOTE_ID_BYTES:
        return f"is {utf8_len(note_id)} UTF-8 bytes; the limit is {MAX_NOTE_ID_BYTES}"
    if note_id.endswith(RESERVED_ID_SUFFIXES):
        return f"ends with {RESERVED_ID_SUFFIXES[0]!r}, which the related-notes route uses"
    return None


def url_problem(url: str) -> str | None:
    """Only absolute http(s) links without spaces or control characters: the page turns them into <a href>."""
    if utf8_len(url) > MAX_URL_BYTES:
        return f"is {utf8_len(url)} UTF-8 bytes; the limit is {MAX_URL_BYTES}"
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in url):
        return "holds whitespace or control characters"
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.netloc or not url.lower().startswith(("http://",
                                                                                                 "https://")):
        return f"must be an absolute http(s) URL, got {url[:40]!r}"
    return None


def category_problem(category: str) -> str | None:
    if utf8_len(category) > MAX_CATEGORY_BYTES:
        return f"is {utf8_len(category)} UTF-8 bytes; the limit is {MAX_CATEGORY_BYTES}"
    return text_problem(category)


def hashtags_problem(hashtags: list[str] | tuple[str, ...]) -> str | None:
    if len(hashtags) > MAX_HASHTAGS:
        return f"{len(hashtags)} hashtags; the limit is {MAX_HASHTAGS}"
    for tag in hashtags:
        if len(tag) > MAX_HASHTAG_CHARS:
            return f"hashtag {tag[:20]!r}... is {len(tag)} characters; the limit is {MAX_HASHTAG_CHARS}"
        if (bad := text_problem(tag)) is not None:
            return f"hashtag {bad}"
    return None
