"""Operations and the page: GET /health, GET /metrics (Prometheus text), GET / (notellm/serve/web/)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from notellm.serve.generator import can_generate
from notellm.serve.schemas import HealthOut
from notellm.serve.service import Service, service

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
router = APIRouter()


@router.get("/health", response_model=HealthOut, tags=["ops"])
def health(svc: Service = Depends(service)):
    """Liveness plus what is loaded."""  # sync: len() of a remote backend is a round trip
    total = len(svc.index)
    svc.metrics.notes.set(total)
    return HealthOut(status="ok", backend=svc.index.name, notes=total, dim=svc.index.dim, **model_info(svc))


def model_info(svc: Service) -> dict:
    """What /health says about the model: the process's own, or, in a read-only worker (which loads none), what
    the writer process reported."""
    if svc.model_info is not None:
        return dict(svc.model_info)
    return {"model": svc.model_name, "runtime": getattr(svc.model, "runtime", "custom"),
            "precision": getattr(svc.model, "precision", "unknown"),
            "can_generate": can_generate(svc.generator, "hashtags") and can_generate(svc.generator, "category")}


@router.get("/metrics", tags=["ops"], response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def prometheus_metrics(svc: Service = Depends(service)):
    """Prometheus metrics: requests, errors and latency histograms per route, notes, embed batch sizes."""
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def page():
    return FileResponse(WEB_DIR / "index.html")
