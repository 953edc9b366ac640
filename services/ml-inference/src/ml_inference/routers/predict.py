"""REST inference: one instance or a batch, answered with class names and probabilities.

The handlers take the raw request and return encoded bytes: no per-request pydantic models on
the hot path (payloads.py does every check). /openapi.json still documents both shapes.
"""

from __future__ import annotations

from time import perf_counter

import msgspec
from fastapi import APIRouter, Request, Response

from ml_inference import payloads
from ml_inference.guards import ready_predictor, require_json
from ml_inference.schemas import (
    BatchRequest,
    BatchResponse,
    PredictRequest,
    PredictResponse,
    error_responses,
    raw_body,
)

router = APIRouter(tags=["predict"])
ERRORS = error_responses(400, 413, 415, 422, 503)


@router.post(
    "/predict", response_model=PredictResponse, responses=ERRORS, openapi_extra=raw_body(PredictRequest)
)
async def predict(request: Request) -> Response:
    """Classify one iris flower from its 4 measurements."""
    predictor = ready_predictor(request)
    require_json(request)
    started = perf_counter()
    body = payloads.decode(await request.body(), payloads.PredictRequest)
    instance = payloads.feature_array(body.features, "$.features")
    return _json(predictor.predict_one(instance, started))


@router.post(
    "/predict/batch", response_model=BatchResponse, responses=ERRORS, openapi_extra=raw_body(BatchRequest)
)
async def predict_batch(request: Request) -> Response:
    """Classify many flowers in one call; predictions keep the input order."""
    predictor = ready_predictor(request)
    require_json(request)
    started = perf_counter()
    body = payloads.decode(await request.body(), payloads.BatchRequest)
    instances = payloads.instance_array(body.instances, "$.instances", request.app.state.settings.max_batch)
    return _json(predictor.predict_batch(instances, started))


def _json(content: dict) -> Response:
    return Response(msgspec.json.encode(content), media_type="application/json")
