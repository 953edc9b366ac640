"""REST inference: one instance or a batch, answered with class names and probabilities.

`answer_one` and `answer_batch` do the work from raw body bytes, with no per-request pydantic
model: payloads.py does every check. The hot path (fast_path.py) calls them directly; the FastAPI
endpoints below call the same functions after the same guards, so /openapi.json documents both
shapes and any request FastAPI does get is answered the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

import msgspec
from fastapi import APIRouter, Request, Response

from ml_inference import payloads
from ml_inference.guards import body_headers, ready_predictor, require_json
from ml_inference.inference import Predictor
from ml_inference.schemas import (
    BatchRequest,
    BatchResponse,
    PredictRequest,
    PredictResponse,
    error_responses,
    raw_body,
)

#: The work of a hot route: (predictor, request body, max batch) to the answer, or ApiError.
Answer = Callable[[Predictor, bytes, int], dict[str, Any]]

router = APIRouter(tags=["predict"])
ERRORS = error_responses(400, 413, 415, 422, 503)


def answer_one(predictor: Predictor, body: bytes, max_batch: int) -> dict[str, Any]:
    started = perf_counter()
    request = payloads.decode(body, payloads.PredictRequest)
    return predictor.predict_one(payloads.feature_array(request.features, "$.features"), started)


def answer_batch(predictor: Predictor, body: bytes, max_batch: int) -> dict[str, Any]:
    started = perf_counter()
    request = payloads.decode(body, payloads.BatchRequest)
    return predictor.predict_batch(
        payloads.instance_array(request.instances, "$.instances", max_batch), started
    )


@router.post(
    "/predict", response_model=PredictResponse, responses=ERRORS, openapi_extra=raw_body(PredictRequest)
)
async def predict(request: Request) -> Response:
    """Classify one iris flower from its 4 measurements."""
    return await _answer(request, answer_one)


@router.post(
    "/predict/batch", response_model=BatchResponse, responses=ERRORS, openapi_extra=raw_body(BatchRequest)
)
async def predict_batch(request: Request) -> Response:
    """Classify many flowers in one call; predictions keep the input order."""
    return await _answer(request, answer_batch)


#: What the hot path serves itself, by path (POST only).
HOT_ROUTES: dict[str, Answer] = {"/predict": answer_one, "/predict/batch": answer_batch}


async def _answer(request: Request, answer: Answer) -> Response:
    predictor = ready_predictor(request.app.state.service)
    require_json(*body_headers(request.scope))
    content = answer(predictor, await request.body(), request.app.state.settings.max_batch)
    return Response(msgspec.json.encode(content), media_type="application/json")
