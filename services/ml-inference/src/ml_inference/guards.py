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
    content_type = request.headers.get("content-type", "")
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise ApiError(
            415,
            f"Content-Type must be application/json, got {content_type or 'none'!r}.",
            "headers.content-type",
        )
