"""Checks every inference request passes before its body is read: readiness, then content type."""

from __future__ import annotations

from fastapi import Request

from ml_inference.inference import Predictor
from ml_inference.payloads import ApiError
from ml_inference.state import ServiceState


def ready_predictor(request: Request) -> Predictor:
    """The predictor, or 503 while the model loads or when it failed to load.

    A draining process still answers: /ready already sends new traffic elsewhere, and whatever
    arrives meanwhile is served rather than failed.
    """
    service: ServiceState = request.app.state.service
    if service.predictor is None:
        raise ApiError(503, f"The model is not ready: {service.not_ready_reason}.", None)
    return service.predictor


def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON (application/json or application/*+json)."""
    # Straight from the ASGI scope: building Starlette's Headers costs more than this whole check.
    declared = next((value for name, value in request.scope["headers"] if name == b"content-type"), b"")
    media_type = declared.partition(b";")[0].strip().lower()
    if media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    ):
        return
    shown = declared.decode("latin-1") or "none"
    raise ApiError(415, f"Content-Type must be application/json, got {shown!r}.", "headers.content-type")
