"""GET /notes/{note_id}/related: the hot read path.

Cheap by construction: an async route (no thread-pool hop for the in-process index), plain dicts encoded once by
orjson (no pydantic model per neighbour), and, with the related cache on, a list lookup instead of a search.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query

from notellm.rerank import rerank
from notellm.serve.responses import JSONBytes
from notellm.serve.routes.errors import ERRORS
from notellm.serve.schemas import RelatedOut
from notellm.serve.service import Service, service, summary

Diversify = Literal["none", "ssd", "ssd_star", "dpp", "mmr"]
router = APIRouter(tags=["recommend"])


def nearest(svc: Service, note_id: str, n: int) -> list[tuple[str, float]]:
    """The n nearest notes of a stored note, itself excluded: from the cache when it holds n, else a search."""
    if svc.cache is not None and n <= svc.cache.k:
        hits = svc.cache.lookup(note_id, n)
        if hits is not None:
            return hits
    try:
        query = svc.index.vectors([note_id])[0]  # (d,)
    except KeyError:
        raise HTTPException(404, f"unknown note id {note_id!r}") from None
    return [h for h in svc.index.search(query, n + 1) if h[0] != note_id][:n]


def related_body(svc: Service, note_id: str, k: int, diversify: str) -> dict:
    cfg = svc.cfg
    n_candidates = k * cfg.candidate_factor if diversify != "none" else k
    hits = nearest(svc, note_id, n_candidates)
    considered = len(hits)
    if diversify != "none" and len(hits) > 1:
        scores = np.asarray([h[1] for h in hits], dtype=np.float32)
        vectors = svc.index.vectors([h[0] for h in hits])  # (n_candidates, d)
        order = rerank(scores, vectors, k, diversify, **cfg.rerank_params.get(diversify, {}))
        hits = [hits[int(i)] for i in order]
    items = []
    for (_, score), note in zip(hits[:k], svc.index.get_many([h[0] for h in hits[:k]])):
        if note is not None:  # deleted between search and lookup: skip it
            item = summary(note)
            item["score"], item["rank"] = score, len(items) + 1
            items.append(item)
    return {"note_id": note_id, "k": k, "diversify": diversify, "candidates": considered, "items": items}


@router.get("/notes/{note_id:path}/related", response_model=RelatedOut, responses=ERRORS)
async def related(note_id: str, k: int = Query(10, ge=1, description="How many related notes."),
                  diversify: Diversify = Query("none", description="Re-ranker from notellm.rerank, or none."),
                  svc: Service = Depends(service)):
    """The k notes most related to a stored note (cosine), optionally diversity re-ranked."""
    if k > svc.cfg.max_k:
        raise HTTPException(422, f"k={k} exceeds the limit of {svc.cfg.max_k}")
    return JSONBytes(await svc.call(related_body, svc, note_id, k, diversify))
