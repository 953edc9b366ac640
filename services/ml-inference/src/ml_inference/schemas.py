"""Pydantic models that document the API in /openapi.json.

The inference endpoints decode their bodies with msgspec (see payloads.py) for speed; these models
describe the same shapes for the schema and for clients, and the tests check the two agree.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

EXAMPLE_FEATURES = [5.1, 3.5, 1.4, 0.2]


class ErrorBody(BaseModel):
    error: str = Field(description="A sentence naming the field and what is wrong with it.")
    field: str | None = Field(
        default=None, description="JSON path of the offending field, e.g. $.features[2]."
    )


class ModelRef(BaseModel):
    name: str
    version: str


class ServiceInfo(BaseModel):
    service: str
    model: ModelRef | None
    endpoints: list[str]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    reason: str | None = None


class PredictRequest(BaseModel):
    features: list[float] = Field(
        min_length=4,
        max_length=4,
        examples=[EXAMPLE_FEATURES],
        description="sepal length, sepal width, petal length, petal width (cm); finite numbers.",
    )


class BatchRequest(BaseModel):
    instances: list[list[float]] = Field(
        min_length=1,
        examples=[[EXAMPLE_FEATURES, [6.7, 3.0, 5.2, 2.3]]],
        description="Instances of 4 features each; at most ML_INFERENCE_MAX_BATCH of them.",
    )


class Prediction(BaseModel):
    prediction: str
    probabilities: dict[str, float]


class PredictResponse(Prediction):
    model: ModelRef
    processing_time_ms: float


class BatchResponse(BaseModel):
    predictions: list[Prediction] = Field(description="One per instance, in input order.")
    count: int
    model: ModelRef
    processing_time_ms: float


class InferTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferRequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """Open Inference Protocol v2 inference request (KServe / MLServer / Triton)."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferTensor] = Field(
        examples=[[{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": EXAMPLE_FEATURES}]]
    )
    outputs: list[InferRequestedOutput] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[InferTensor]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelReadiness(BaseModel):
    name: str | None = None
    ready: bool


class Liveness(BaseModel):
    live: bool


class ServerReadiness(BaseModel):
    ready: bool


# Bodies decoded by msgspec rather than by FastAPI: documented by reference (see app._openapi).
RAW_REQUEST_BODIES = (PredictRequest, BatchRequest, InferRequest)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def raw_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring `model` as the JSON request body of a route that reads it raw."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }
