"""Note reads and durable writes: GET /notes/{id}, GET /notes?q=, POST /notes, DELETE /notes/{id}.

Writes go to the index (durable when it returns) and then to the related cache, both in the thread pool (an
fsync must not stall the event loop); a write is acknowledged only once both hold it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool

from notellm.serve.responses import JSONBytes
from notellm.serve.routes.errors import ERRORS
from notellm.serve.schemas import DeleteOut, NoteOut, SearchOut, UpsertIn, UpsertOut
from notellm.serve.service import Service, service, summary, to_note

router = APIRouter(tags=["notes"])  # reads
write_router = APIRouter(tags=["notes"])  # writes: in a multi-process server only the writer has these


@router.get("/notes/{note_id:path}", response_model=NoteOut, responses=ERRORS)
async def get_note(note_id: str, svc: Service = Depends(service)):
    """One stored note."""
    note = await svc.call(svc.index.get, note_id)
    if note is None:
        raise HTTPException(404, f"unknown note id {note_id!r}")
    return JSONBytes(dict(summary(note), content=note.content))


@router.get("/notes", response_model=SearchOut)
async def search_notes(q: str = Query("", max_length=200, description="Text the title must contain (any case)."),
                       limit: int = Query(20, ge=1, description="Most notes to return."),
                       svc: Service = Depends(service)):
    """Notes whose title contains `q` (the page's search box); some notes when `q` is empty."""
    limit = min(limit, svc.cfg.max_search_results)
    found = await run_in_threadpool(svc.index.search_titles, q, limit)  # a linear scan: off the loop
    return JSONBytes({"query": q, "items": [summary(n) for n in found]})


def _write(svc: Service, notes, vectors) -> int:
    svc.index.upsert(notes, vectors)
    if svc.cache is not None:
        svc.cache.upsert([n.note_id for n in notes], vectors)
    return len(svc.index)


def _delete(svc: Service, note_id: str) -> int | None:
    if not svc.index.delete(note_id):
        return None
    if svc.cache is not None:
        svc.cache.delete(note_id)
    return len(svc.index)


@write_router.post("/notes", response_model=UpsertOut, responses=ERRORS)
async def upsert_notes(body: UpsertIn, svc: Service = Depends(service)):
    """Add or replace notes: embedded, written durably (fsynced), then searchable at once; no rebuild."""
    svc.check_notes(body.notes, require_unique_ids=True)
    notes = [to_note(n) for n in body.notes]
    vectors = await svc.batcher.embed(notes)  # (n, d)
    if vectors.shape[1] != svc.index.dim:
        raise HTTPException(500, f"the model embeds into {vectors.shape[1]} dims, the index holds {svc.index.dim}")
    total = await run_in_threadpool(_write, svc, notes, vectors)
    svc.metrics.notes.set(total)
    return JSONBytes({"ids": [n.note_id for n in notes], "notes_total": total})


@write_router.delete("/notes/{note_id:path}", response_model=DeleteOut, responses=ERRORS)
async def delete_note(note_id: str, svc: Service = Depends(service)):
    """Remove a stored note (durably)."""
    total = await run_in_threadpool(_delete, svc, note_id)
    if total is None:
        raise HTTPException(404, f"unknown note id {note_id!r}")
    svc.metrics.notes.set(total)
    return JSONBytes({"deleted": note_id, "notes_total": total})
