"""Service info, liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ml_inference.schemas import Health, Readiness, ServiceInfo
from ml_inference.state import ServiceState

SERVICE_NAME = "ml-inference"
router = APIRouter(tags=["service"])


@router.get("/", response_model=ServiceInfo)
async def service_info(request: Request) -> dict:
    """What this service is, which model it serves, and its endpoints."""
    service: ServiceState = request.app.state.service
    return {
        "service": SERVICE_NAME,
        "model": service.predictor.model_ref if service.predictor else None,
        "endpoints": sorted([*request.app.openapi()["paths"], request.app.docs_url, request.app.openapi_url]),
    }


@router.get("/health", response_model=Health)
async def health() -> dict:
    """Liveness: the process answers. Says nothing about the model (see /ready)."""
    return {"status": "ok"}


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 only when the model is loaded and the process is not draining."""
    service: ServiceState = request.app.state.service
    if service.ready:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready", "reason": service.not_ready_reason}, status_code=503)
