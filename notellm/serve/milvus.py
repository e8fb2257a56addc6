"""`MilvusNoteIndex`: the scale-out backend; notes and embeddings live in one Milvus collection.

Point it at a Milvus cluster (`http://host:19530`, optionally `token`) or at a milvus-lite file (`./notes.db`, the
embedded engine, used by the tests). Schema: `note_id` VARCHAR primary key, `vector` FLOAT_VECTOR(dim) with a FLAT
inner-product index (exact, matching the local backend; switch to HNSW/IVF in Milvus for very large pools),
`title`, `title_lc` (lower-cased, for the page's case-insensitive search), `content`, `hashtags` (JSON list as
text), `category` and `url`. Collections are created with Strong consistency so a write is searchable by the next read.

Durability is Milvus's: an upsert returns once Milvus has logged it. Local index folders (from `notellm index
build`) seed a missing or empty collection once, so the same build step serves both backends.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from notellm.data.schema import HASHTAGS, URL, Note

log = logging.getLogger(__name__)

_FIELDS = ["note_id", "title", "content", "hashtags", "category", "url"]
_MAX_VARCHAR = 65535
MAX_ID_BYTES = 512  # VARCHAR max_length of the note_id column (Milvus counts UTF-8 bytes)
MAX_CATEGORY_BYTES = 1024  # ... of the category column
MAX_URL_BYTES = 2048  # ... of the url column
_COLUMN_BYTES = {"note_id": MAX_ID_BYTES, "title": _MAX_VARCHAR, "title_lc": _MAX_VARCHAR, "content": _MAX_VARCHAR,
                 "hashtags": _MAX_VARCHAR, "category": MAX_CATEGORY_BYTES, "url": MAX_URL_BYTES}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\n": "\\n", "\t": "\\t"}


def _filterable(text: str) -> bool:
    """Whether `text` can be written as a Milvus string literal: no control character other than tab/newline
    (the expression grammar has no escape for them) and no lone surrogate."""
    return not any((ord(ch) < 0x20 and ch not in "\t\n") or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF
                   for ch in text)


def _storable_id(note_id: str) -> bool:
    """Whether an id could be a stored primary key that a filter can name (other ids are simply not found)."""
    return isinstance(note_id, str) and 0 < len(note_id.encode("utf-8", "surrogatepass")) <= MAX_ID_BYTES \
        and _filterable(note_id)


def _escaped(text: str, like: bool = False) -> str:
    """The body of a double-quoted Milvus string literal that reads back as exactly `text` (`_filterable` only).

    Filters are built as text because milvus-lite (3.2) parses no filter templates (`note_id in {ids}` with
    filter_params), and pymilvus' own `get(ids=)`/`delete(ids=)` splice ids into `note_id in ['...']` unescaped
    (issue #13, case 1: `zzz'] or note_id not in ['` deleted every note). Backslash and both quotes are escaped,
    tab/newline written as `\\t`/`\\n` (the escapes milvus-lite's grammar knows); with `like=True`, `%` and
    `_` are escaped to match literally.
    """
    out = []
    for ch in text:
        if like and ch in "%_":
            out.append("\\\\" + ch)  # the pattern needs `\%`; the literal needs that backslash escaped
        else:
            out.append(_ESCAPES.get(ch, ch))
    return "".join(out)


def _id_filter(note_ids: list[str]) -> str:
    return "note_id in [" + ", ".join(f'"{_escaped(n)}"' for n in note_ids) + "]"


def _to_note(row: dict) -> Note:
    """A Milvus row (hashtags stored as JSON text) through the data model's codec."""
    return Note.from_dict({**row, HASHTAGS: json.loads(row.get(HASHTAGS) or "[]")},
                          extra=(URL,) if row.get(URL) else ())


class MilvusNoteIndex:
    """The NoteIndex contract on a Milvus collection."""

    name = "milvus"

    def __init__(self, client, collection: str, dim: int) -> None:
        self._client, self.collection, self.dim = client, collection, dim

    @classmethod
    def open(cls, uri: str, collection: str, *, dim: int | None = None, seed_from: str | Path | None = None,
             token: str = "") -> MilvusNoteIndex:
        """Connect; create the collection (dim from `seed_from` or `dim`) if missing; seed it if empty."""
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)
        seed = None
        if seed_from is not None:
            from notellm.serve.store import LocalNoteIndex

            seed = LocalNoteIndex.open(seed_from, compact_every=0)
            dim = seed.dim
        if not client.has_collection(collection):
            if dim is None:
                raise ValueError(f"Milvus collection {collection!r} does not exist at {uri}; pass --index to seed it")
            cls._create(client, collection, dim)
        described = client.describe_collection(collection)
        vector_field = next((f for f in described["fields"] if f["name"] == "vector"), None)
        if vector_field is None:
            raise ValueError(f"Milvus collection {collection!r} has no 'vector' field; not a notellm collection")
        actual_dim = int(vector_field["params"]["dim"])
        if dim is not None and actual_dim != dim:
            raise ValueError(f"Milvus collection {collection!r} has dim {actual_dim}, the index/model has {dim}")
        client.load_collection(collection)  # an existing collection starts "released"; searching needs it loaded
        index = cls(client, collection, actual_dim)
        if seed is not None:
            if len(index) == 0 and len(seed):
                index._seed(seed)
            seed.close()
        return index

    @staticmethod
    def _create(client, collection: str, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("note_id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        for name in ("title", "title_lc", "content", "hashtags"):
            schema.add_field(name, DataType.VARCHAR, max_length=_MAX_VARCHAR)
        schema.add_field("category", DataType.VARCHAR, max_length=MAX_CATEGORY_BYTES)
        schema.add_field("url", DataType.VARCHAR, max_length=MAX_URL_BYTES)
        params = client.prepare_index_params()
        params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        client.create_collection(collection, schema=schema, index_params=params, consistency_level="Strong")

    def _seed(self, local) -> None:
        ids = list(local._notes)
        for start in tqdm(range(0, len(ids), 512), desc=f"seeding Milvus {self.collection}", unit="batch"):
            chunk = ids[start : start + 512]
            self.upsert([local._notes[i] for i in chunk], local.vectors(chunk))

    # --- NoteIndex contract -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _rows(self, note_ids: list[str], fields: list[str]) -> list[dict]:
        """Rows of the given ids, through an escaped filter (never pymilvus' unescaped `get(ids=)`); rows whose id
        was not asked for are dropped, so even a faulty escape could not leak other notes."""
        wanted = [n for n in dict.fromkeys(note_ids) if _storable_id(n)]
        if not wanted:
            return []
        rows = self._client.query(self.collection, filter=_id_filter(wanted), output_fields=fields)
        asked = set(wanted)
        return [r for r in rows if str(r["note_id"]) in asked]

    def get(self, note_id: str) -> Note | None:
        rows = self._rows([note_id], _FIELDS)
        return _to_note(rows[0]) if rows else None

    def get_many(self, note_ids: list[str]) -> list[Note | None]:
        if not note_ids:
            return []
        by_id = {str(r["note_id"]): _to_note(r) for r in self._rows(list(note_ids), _FIELDS)}
        return [by_id.get(n) for n in note_ids]

    def vectors(self, note_ids: list[str]) -> np.ndarray:
        if not note_ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = self._rows(list(note_ids), ["note_id", "vector"])
        by_id = {str(r["note_id"]): r["vector"] for r in rows}
        missing = [n for n in note_ids if n not in by_id]
        if missing:
            raise KeyError(f"unknown note id(s): {missing[:5]}")
        return np.asarray([by_id[n] for n in note_ids], dtype=np.float32)  # (n, d)

    def upsert(self, notes: list[Note], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(notes), self.dim):
            raise ValueError(f"upsert: expected vectors of shape ({len(notes)}, {self.dim}), got {vectors.shape}")
        if len({n.note_id for n in notes}) != len(notes):
            raise ValueError("upsert: the same note id appears twice in one request")
        rows = [{"note_id": n.note_id, "vector": v.tolist(), "title": n.title, "title_lc": n.title.casefold(),
                 "content": n.content, "hashtags": json.dumps(list(n.hashtags), ensure_ascii=False),
                 "category": n.category, "url": n.url} for n, v in zip(notes, vectors)]
        for row in rows:  # a value over its column's size is a clear error here, not an opaque Milvus failure
            for name, limit in _COLUMN_BYTES.items():
                if len(row[name].encode("utf-8", "surrogatepass")) > limit:
                    raise ValueError(f"note {row['note_id'][:60]!r}: {name} is over the Milvus column's {limit} "
                                     "UTF-8 bytes")
        self._client.upsert(self.collection, rows)

    def delete(self, note_id: str) -> bool:
        if not _storable_id(note_id):
            return False
        expr = _id_filter([note_id])
        matched = [str(r["note_id"]) for r in self._client.query(self.collection, filter=expr,
                                                                 output_fields=["note_id"])]
        if matched != [note_id]:  # the filter selects exactly this note or nothing is deleted
            return False
        self._client.delete(self.collection, filter=expr)
        return True

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        k = min(int(k), 16384)  # Milvus' topk ceiling
        query = np.asarray(query, dtype=np.float32).reshape(self.dim)
        hits = self._client.search(self.collection, data=[query.tolist()], limit=k, anns_field="vector",
                                   search_params={"metric_type": "IP"}, output_fields=[])
        return [(str(h["note_id"] if "note_id" in h else h["id"]), float(h["distance"])) for h in hits[0]]

    def search_titles(self, text: str, limit: int) -> list[Note]:
        needle = text.casefold().strip()
        if not _filterable(needle):
            return []  # no title holds such characters (the API refuses them in notes)
        expr = f'title_lc like "%{_escaped(needle, like=True)}%"' if needle else ""
        rows = self._client.query(self.collection, filter=expr, output_fields=_FIELDS, limit=limit)
        return [_to_note(r) for r in rows]

    def close(self) -> None:
        self._client.close()
