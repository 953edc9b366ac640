"""Decode and check request bodies of the inference endpoints, naming the field of any problem.

The hot path decodes with msgspec straight into typed structs (type errors come with their JSON
path) and checks shape, batch size and finiteness with numpy in one pass. Only a body that fails
to decode takes the slow path: Python's json module, which also reads the NaN and Infinity
tokens that some clients write, so that such a body is refused as "feature X is not finite"
instead of a vague "malformed JSON".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
import numpy as np

from ml_inference.model import N_FEATURES

FLOAT32_MAX = float(np.finfo(np.float32).max)
NUMERIC_DATATYPES = frozenset(
    {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)


class ApiError(Exception):
    """A refused request: HTTP status, a sentence naming the field, its JSON path, any headers it needs."""

    def __init__(
        self, status: int, message: str, field: str | None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}


class PredictRequest(msgspec.Struct):
    features: list[float]


class BatchRequest(msgspec.Struct):
    instances: list[list[float]]


class InferInput(msgspec.Struct):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferRequestedOutput(msgspec.Struct):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(msgspec.Struct):
    inputs: list[InferInput]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[InferRequestedOutput] | None = None


Body = TypeVar("Body", bound=msgspec.Struct)
Converted = TypeVar("Converted")

_DECODERS: dict[type, msgspec.json.Decoder] = {
    kind: msgspec.json.Decoder(kind) for kind in (PredictRequest, BatchRequest, InferRequest)
}
_MISSING_FIELD = re.compile(r"missing required field `(?P<name>[^`]+)`")


def decode(body: bytes, kind: type[Body]) -> Body:
    """`body` as a `kind`, or ApiError: 400 for JSON that does not parse, 422 for wrong types."""
    try:
        # JSON between systems is UTF-8 (RFC 8259); msgspec does not check the strings it skips.
        body.decode()
    except UnicodeDecodeError as error:
        raise ApiError(400, f"The request body is not valid UTF-8 (byte {error.start}).", "$") from None
    try:
        return _DECODERS[kind].decode(body)
    except msgspec.ValidationError as error:
        raise _validation_error(error, "$") from None
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ApiError(400, f"The request body is not valid JSON: {error}.", "$") from None
    return convert(document, kind, "$")


def is_unicode(text: str) -> bool:
    """Whether `text` can be sent as UTF-8: False when a JSON escape left a lone surrogate in it."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def convert(value: Any, kind: type[Converted], path: str) -> Converted:
    """`value` (already parsed) as a `kind`, errors named relative to `path`."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as error:
        raise _validation_error(error, path) from None


def _validation_error(error: msgspec.ValidationError, base: str) -> ApiError:
    """Turn msgspec's 'Expected `float`, got `str` - at `$.features[0]`' into our error shape."""
    reason, _, where = str(error).partition(" - at `")
    field = base + where.rstrip("`")[1:] if where else base
    missing = _MISSING_FIELD.search(reason)
    if missing:
        field = f"{field}.{missing['name']}"
        return ApiError(422, f"{field} is required.", field)
    reason = reason.replace("`float`", "a number").replace("`", "")
    subject = "The request body" if field == "$" else field
    return ApiError(422, f"{subject} is invalid: {reason[:1].lower()}{reason[1:]}.", field)


def instance_array(
    rows: list[list[float]], path: str, max_batch: int, cell: Callable[[int, int], str] | None = None
) -> np.ndarray:
    """Rows of features as a float32 (n, 4) array, refusing empty, oversized, ragged or non-finite input.

    A bad value is named `cell(row, column)`, by default `path[row][column]`.
    """
    if not rows:
        raise ApiError(422, f"{path} is empty: send at least one instance.", path)
    if len(rows) > max_batch:
        raise ApiError(
            413,
            f"{path} has {len(rows)} instances; this server accepts at most {max_batch} per request "
            "(ML_INFERENCE_MAX_BATCH).",
            path,
        )
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        values = None
    if values is None or values.ndim != 2 or values.shape[1] != N_FEATURES:
        for index, row in enumerate(rows):
            if len(row) != N_FEATURES:
                raise _feature_count_error(f"{path}[{index}]", len(row))
    # np.array fails only on ragged rows, and a ragged row raised above.
    assert values is not None
    return _finite_float32(values, cell or (lambda row, column: f"{path}[{row}][{column}]"))


def feature_array(features: list[float], path: str) -> np.ndarray:
    """One instance's features as a float32 (1, 4) array."""
    if len(features) != N_FEATURES:
        raise _feature_count_error(path, len(features))
    # Four plain comparisons beat numpy's fixed cost per call; NaN fails them too.
    for index, value in enumerate(features):
        if not -FLOAT32_MAX <= value <= FLOAT32_MAX:
            raise _not_finite_error(f"{path}[{index}]", value)
    return np.array([features], dtype=np.float32)


def _feature_count_error(path: str, count: int) -> ApiError:
    return ApiError(
        422,
        f"{path} must have exactly {N_FEATURES} numbers (sepal length, sepal width, petal length, "
        f"petal width in cm), got {count}.",
        path,
    )


def _finite_float32(values: np.ndarray, cell: Callable[[int, int], str]) -> np.ndarray:
    # One comparison catches NaN (compares false), infinities and values float32 cannot hold.
    if not np.abs(values).max() <= FLOAT32_MAX:
        row, column = (int(i) for i in np.argwhere(~(np.abs(values) <= FLOAT32_MAX))[0])
        raise _not_finite_error(cell(row, column), float(values[row, column]))
    return values.astype(np.float32)


def _not_finite_error(field: str, value: float) -> ApiError:
    return ApiError(422, f"{field} must be a finite number within float32 range, got {value}.", field)


def tensor_array(tensor: InferInput, path: str, max_batch: int) -> tuple[np.ndarray, Callable[[int], str]]:
    """An OIP v2 input tensor (shape [N, 4], flat row-major or nested data) as a float32 (N, 4) array,
    and how to name one of its rows: errors name the data as the client wrote it."""
    if tensor.datatype not in NUMERIC_DATATYPES:
        raise ApiError(
            400,
            f"{path}.datatype {tensor.datatype!r} is not numeric; send FP32 (or another number type).",
            f"{path}.datatype",
        )
    if len(tensor.shape) != 2 or tensor.shape[1] != N_FEATURES or tensor.shape[0] < 0:
        raise ApiError(
            400,
            f"{path}.shape must be [N, {N_FEATURES}] (N instances of 4 features), got {tensor.shape}.",
            f"{path}.shape",
        )
    data_path = f"{path}.data"
    if tensor.data and all(isinstance(item, list) for item in tensor.data):
        rows = convert(tensor.data, list[list[float]], data_path)
        for index, row in enumerate(rows):
            if len(row) != N_FEATURES:
                raise ApiError(
                    400,
                    f"{data_path}[{index}] has {len(row)} values but shape {tensor.shape} needs "
                    f"{N_FEATURES} per row.",
                    f"{data_path}[{index}]",
                )
    else:
        flat = convert(tensor.data, list[float], data_path)
        if len(flat) != tensor.shape[0] * N_FEATURES:
            raise ApiError(
                400,
                f"{data_path} has {len(flat)} values but shape {tensor.shape} needs "
                f"{tensor.shape[0] * N_FEATURES}.",
                data_path,
            )
        rows = [flat[i : i + N_FEATURES] for i in range(0, len(flat), N_FEATURES)]
        array = instance_array(
            rows, data_path, max_batch, lambda row, column: f"{data_path}[{row * N_FEATURES + column}]"
        )
        return array, lambda row: f"{data_path}[{row * N_FEATURES}:{(row + 1) * N_FEATURES}]"
    if len(rows) != tensor.shape[0]:
        raise ApiError(400, f"{data_path} has {len(rows)} rows but shape says {tensor.shape[0]}.", data_path)
    return instance_array(rows, data_path, max_batch), lambda row: f"{data_path}[{row}]"
