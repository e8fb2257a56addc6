"""/generate's model calls, in chunks through the `ModelGate`, so writes are never stuck behind a long generation."""

from __future__ import annotations

from notellm.data.schema import Note
from notellm.serve.gate import ModelGate
from notellm.serve.schemas import Generated, GenerateIn


def generate_in_chunks(model, gate: ModelGate, body: GenerateIn, notes: list[Note], chunk: int) -> list[Generated]:
    """Hashtags or categories for `notes`, `chunk` notes per model call (each call waits for pending embeddings)."""
    results: list[Generated] = []
    for start in range(0, len(notes), chunk):
        part = notes[start : start + chunk]
        with gate.generation_chunk():
            if body.task == "hashtags":
                tags = model.generate_hashtags(part, k=body.k, constrained=bool(body.vocabulary),
                                               vocabulary=body.vocabulary)
                results += [Generated(note_id=n.note_id, hashtags=list(t)) for n, t in zip(part, tags)]
            else:
                cats = model.generate_category(part, constrained=bool(body.categories), categories=body.categories)
                results += [Generated(note_id=n.note_id, category=c) for n, c in zip(part, cats)]
    return results
