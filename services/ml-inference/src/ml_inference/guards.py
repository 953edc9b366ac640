"""Checks every inference request passes before its body is read: readiness, then content type.

They take the service state and the raw header value, not a Request, so that the hot path
(fast_path.py) and the FastAPI handlers run the very same checks.
"""

from __future__ import annotations

from starlette.types import Scope

from ml_inference.inference import Predictor
from ml_inference.payloads import ApiError
from ml_inference.state import ServiceState


def ready_predictor(service: ServiceState) -> Predictor:
    """The predictor, or 503 while the model loads or when it failed to load.

    A draining process still answers: /ready already sends new traffic elsewhere, and whatever
    arrives meanwhile is served rather than failed.
    """
    if service.predictor is None:
        raise ApiError(503, f"The model is not ready: {service.not_ready_reason}.", None)
    return service.predictor


def body_headers(scope: Scope) -> tuple[bytes, bytes]:
    """(Content-Type, Content-Encoding), the first of each as sent, empty when absent."""
    # Straight from the ASGI scope: building Starlette's Headers costs more than the whole check.
    declared = encoding = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            declared = declared or value
        elif name == b"content-encoding":
            encoding = encoding or value
    return declared, encoding


def require_json(declared: bytes, encoding: bytes) -> None:
    """415 unless the body is JSON (Content-Type application/json or application/*+json), not encoded."""
    if encoding and encoding.strip().lower() != b"identity":
        raise ApiError(
            415,
            f"Content-Encoding {encoding.decode('latin-1')!r} is not accepted; send the body unencoded.",
            "headers.content-encoding",
            # RFC 9110 (15.5.16): a 415 for a content coding names the codings that would do.
            {"Accept-Encoding": "identity"},
        )
    media_type = declared.partition(b";")[0].strip().lower()
    if media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    ):
        return
    shown = declared.decode("latin-1") or "none"
    raise ApiError(415, f"Content-Type must be application/json, got {shown!r}.", "headers.content-type")
