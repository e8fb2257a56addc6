"""Model calls: POST /embed (micro-batched embeddings) and POST /generate (hashtags or a category)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool

from notellm.serve.generation import generate_in_chunks
from notellm.serve.generator import can_generate
from notellm.serve.responses import JSONBytes
from notellm.serve.routes.errors import ERRORS
from notellm.serve.schemas import EmbedIn, EmbedOut, ErrorOut, GenerateIn, GenerateOut
from notellm.serve.service import Service, service, to_note

router = APIRouter(tags=["model"])


@router.post("/embed", response_model=EmbedOut, responses=ERRORS)
async def embed(body: EmbedIn, svc: Service = Depends(service)):
    """Embeddings of the posted notes (nothing is stored)."""
    svc.check_notes(body.notes, require_unique_ids=False)
    vectors = await svc.batcher.embed([to_note(n) for n in body.notes])  # (n, d)
    return JSONBytes({"dim": int(vectors.shape[1]), "embeddings": vectors})


def _generate(svc: Service, body: GenerateIn) -> GenerateOut:
    model = svc.generator
    if not can_generate(model, body.task):
        raise HTTPException(501, f"the loaded model cannot generate {body.task} (generation runs on the PyTorch "
                                 "model: start the service with --generate-model)")
    if body.note_ids:
        if len(body.note_ids) > svc.cfg.max_notes_per_request:
            raise HTTPException(413, f"{len(body.note_ids)} note ids; the limit is {svc.cfg.max_notes_per_request}")
        notes = []
        for note_id in body.note_ids:
            note = svc.index.get(note_id)
            if note is None:
                raise HTTPException(404, f"unknown note id {note_id!r}")
            notes.append(note)
    else:
        svc.check_notes(body.notes, require_unique_ids=False)
        notes = [to_note(n) for n in body.notes]
    results = generate_in_chunks(model, svc.gate, body, notes, svc.cfg.generate_chunk_notes)  # writes go first
    return GenerateOut(task=body.task, results=results)


@router.post("/generate", response_model=GenerateOut, responses={**ERRORS, 501: {"model": ErrorOut}})
async def generate(body: GenerateIn, svc: Service = Depends(service)):
    """Generate hashtags (k per note) or a category for stored notes (`note_ids`) or posted `notes`."""
    return await run_in_threadpool(_generate, svc, body)  # model calls: off the loop
