"""Open Inference Protocol v2 (KServe, MLServer, Triton): health, metadata and tensor inference.

Clients written for KServe's sklearn-iris example work unchanged: the same paths, the same
tensor format, the request `id` echoed back, `{"error": ...}` bodies on failure.
"""

from __future__ import annotations

import uuid
from time import perf_counter
from typing import Any

import msgspec
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from ml_inference import __version__, payloads
from ml_inference.guards import body_headers, ready_predictor, require_json
from ml_inference.inference import Predictor
from ml_inference.model import MODEL_NAME, N_FEATURES
from ml_inference.payloads import ApiError
from ml_inference.schemas import (
    InferRequest,
    InferResponse,
    Liveness,
    ModelMetadata,
    ModelReadiness,
    ServerMetadata,
    ServerReadiness,
    error_responses,
    raw_body,
)
from ml_inference.state import ServiceState

router = APIRouter(prefix="/v2", tags=["open inference protocol v2"])
OUTPUT_CLASS = "output-0"
OUTPUT_LABEL = "label"
OUTPUT_PROBABILITIES = "probabilities"
INPUT_NAME = "input-0"
#: Every output of the model. An infer answer holds each at most once (a repeated or unknown name
#: is a 400), so no answer is larger than the default one, all three outputs for the same rows:
#: about 60 bytes a row for iris, plus the request's own `id` echoed back and a fixed envelope.
OUTPUTS = (OUTPUT_CLASS, OUTPUT_LABEL, OUTPUT_PROBABILITIES)


@router.get("", response_model=ServerMetadata)
async def server_metadata() -> dict:
    """Server name, version and protocol extensions."""
    return {"name": "ml-inference", "version": __version__, "extensions": []}


@router.get("/health/live", response_model=Liveness)
async def live() -> dict:
    """The process answers."""
    return {"live": True}


@router.get("/health/ready", response_model=ServerReadiness, responses={503: {"model": ServerReadiness}})
async def server_ready(request: Request) -> JSONResponse:
    """Every model is ready (there is one) and the process is not draining."""
    ready = request.app.state.service.ready
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@router.get("/models/{model_name}/ready", response_model=ModelReadiness, responses=error_responses(404, 503))
@router.get(
    "/models/{model_name}/versions/{model_version}/ready",
    response_model=ModelReadiness,
    responses=error_responses(404, 503),
)
async def model_ready(model_name: str, request: Request, model_version: str | None = None) -> JSONResponse:
    """Whether this model (this version of it) can serve inference now."""
    _check_name(model_name)
    service: ServiceState = request.app.state.service
    if model_version is not None and service.predictor is not None:
        _served_model(request, model_name, model_version)  # 404 for a version not served here
    return JSONResponse(
        {"name": model_name, "ready": service.ready}, status_code=200 if service.ready else 503
    )


@router.get("/models/{model_name}", response_model=ModelMetadata, responses=error_responses(404, 503))
@router.get(
    "/models/{model_name}/versions/{model_version}",
    response_model=ModelMetadata,
    responses=error_responses(404, 503),
)
async def model_metadata(model_name: str, request: Request, model_version: str | None = None) -> dict:
    """The model's name, versions, platform and tensor signature."""
    predictor = _served_model(request, model_name, model_version)
    classes = len(predictor.class_names)
    return {
        "name": predictor.model.name,
        "versions": [predictor.model.version],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, N_FEATURES]}],
        "outputs": [
            {"name": OUTPUT_CLASS, "datatype": "INT64", "shape": [-1]},
            {"name": OUTPUT_LABEL, "datatype": "BYTES", "shape": [-1]},
            {"name": OUTPUT_PROBABILITIES, "datatype": "FP64", "shape": [-1, classes]},
        ],
    }


INFER_OPTIONS: dict[str, Any] = {
    "response_model": InferResponse,
    "responses": error_responses(400, 404, 413, 415, 422, 503),
    "openapi_extra": raw_body(InferRequest),
}


@router.post("/models/{model_name}/infer", **INFER_OPTIONS)
@router.post("/models/{model_name}/versions/{model_version}/infer", **INFER_OPTIONS)
async def infer(model_name: str, request: Request, model_version: str | None = None) -> Response:
    """Run inference on one FP32 tensor of shape [N, 4]."""
    predictor = _served_model(request, model_name, model_version)
    require_json(*body_headers(request.scope))
    started = perf_counter()
    body = payloads.decode(await request.body(), payloads.InferRequest)
    if body.id is not None and not payloads.is_unicode(body.id):
        # JSON lets "\ud800" through; the answer, which echoes the id, could not be encoded.
        raise ApiError(400, "$.id holds a lone surrogate escape (\\ud800 to \\udfff): send Unicode.", "$.id")
    if len(body.inputs) != 1:
        raise ApiError(400, f"$.inputs must hold exactly one tensor, got {len(body.inputs)}.", "$.inputs")
    settings = request.app.state.settings
    instances, field_of_row = payloads.tensor_array(body.inputs[0], "$.inputs[0]", settings.max_batch)
    wanted = _requested_outputs(body)
    probabilities, predicted = predictor.probabilities(instances, field_of_row)
    count = len(instances)
    tensors = {
        OUTPUT_CLASS: {
            "name": OUTPUT_CLASS,
            "datatype": "INT64",
            "shape": [count],
            "data": predicted,
        },
        OUTPUT_LABEL: {
            "name": OUTPUT_LABEL,
            "datatype": "BYTES",
            "shape": [count],
            "data": [predictor.class_names[index] for index in predicted],
        },
        OUTPUT_PROBABILITIES: {
            "name": OUTPUT_PROBABILITIES,
            "datatype": "FP64",
            "shape": [count, len(predictor.class_names)],
            "data": [p for row in probabilities for p in row],
        },
    }
    answer = {
        "model_name": predictor.model.name,
        "model_version": predictor.model.version,
        "id": body.id if body.id is not None else str(uuid.uuid4()),
        "parameters": {"processing_time_ms": round((perf_counter() - started) * 1000, 3)},
        "outputs": [tensors[name] for name in wanted],
    }
    return Response(msgspec.json.encode(answer), media_type="application/json")


def _requested_outputs(body: payloads.InferRequest) -> list[str]:
    """The outputs to answer with, each at most once: see OUTPUTS for the bound that gives."""
    if not body.outputs:
        return list(OUTPUTS)
    wanted: list[str] = []
    for index, output in enumerate(body.outputs):
        field = f"$.outputs[{index}].name"
        if output.name not in OUTPUTS:
            raise ApiError(
                400, f"{field} {output.name!r} is not an output of this model; use one of {OUTPUTS}.", field
            )
        if output.name in wanted:
            raise ApiError(400, f"{field} {output.name!r} is asked for more than once.", field)
        wanted.append(output.name)
    return wanted


def _check_name(model_name: str) -> None:
    if model_name != MODEL_NAME:
        raise ApiError(
            404,
            f"Model name {model_name!r} is not served here; this server serves {MODEL_NAME!r}.",
            "model_name",
        )


def _served_model(request: Request, model_name: str, model_version: str | None) -> Predictor:
    """The predictor for `model_name` (and `model_version` if given): 404 if unknown, 503 if not ready."""
    _check_name(model_name)
    predictor = ready_predictor(request.app.state.service)
    if model_version is not None and model_version != predictor.model.version:
        raise ApiError(
            404,
            f"Model version {model_version!r} of {model_name!r} is not served here; "
            f"this server serves {predictor.model.version!r}.",
            "model_version",
        )
    return predictor
