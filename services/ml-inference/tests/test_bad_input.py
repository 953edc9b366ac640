"""The bad-input table: every refused request gets a 4xx JSON body naming the field, never a 500."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ml_inference import app as app_module
from ml_inference.app import create_app
from ml_inference.model import IrisModel, ModelCard
from ml_inference.routers.predict import HOT_ROUTES
from ml_inference.settings import Settings

from .conftest import wait_until_ready

JSON = {"content-type": "application/json"}
GZIPPED = {**JSON, "content-encoding": "gzip"}
GOOD = [5.1, 3.5, 1.4, 0.2]
INFER = "/v2/models/sklearn-iris/infer"


def tensor(data: Any, shape: Any = (1, 4), datatype: str = "FP32") -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": list(shape), "datatype": datatype, "data": data}]}


# (case id, path, raw body, headers, status, field)
CASES = [
    ("malformed json", "/predict", b'{"features": [5.1, 3.5,', JSON, 400, "$"),
    ("empty body", "/predict", b"", JSON, 400, "$"),
    ("not utf-8", "/predict", b'\xff{"features": [5.1, 3.5, 1.4, 0.2]}', JSON, 400, "$"),
    ("nested too deep", "/predict", b'{"x": ' + b"[" * 100_000, JSON, 400, "$"),
    ("not utf-8 in a string", "/predict", b'{"features": [5.1, 3.5, 1.4, 0.2], "z": "\xff"}', JSON, 400, "$"),
    ("utf-16", "/predict", '{"features": [5.1, 3.5, 1.4, 0.2]}'.encode("utf-16"), JSON, 400, "$"),
    (
        "two content types",
        "/predict",
        b'{"features": [5.1, 3.5, 1.4, 0.2]}',
        [("content-type", "text/plain"), ("content-type", "application/json")],
        415,
        "headers.content-type",
    ),
    ("beyond the model", "/predict", b'{"features": [1e38, 1e38, 1e38, 1e38]}', JSON, 422, "$.features"),
    (
        "batch row beyond what the model scores",
        "/predict/batch",
        b'{"instances": [[5.1, 3.5, 1.4, 0.2], [3e38, -3e38, 3e38, -3e38]]}',
        JSON,
        422,
        "$.instances[1]",
    ),
    # A compressed body (tritonclient's request_compression_algorithm) is refused by name, not
    # read as bad UTF-8; any other coding is not ignored either (RFC 9110: 415).
    (
        "gzip body",
        "/predict",
        gzip.compress(b'{"features": [5.1, 3.5, 1.4, 0.2]}'),
        GZIPPED,
        415,
        "headers.content-encoding",
    ),
    (
        "gzip batch",
        "/predict/batch",
        gzip.compress(b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'),
        GZIPPED,
        415,
        "headers.content-encoding",
    ),
    (
        "brotli declared",
        "/predict",
        b'{"features": [5.1, 3.5, 1.4, 0.2]}',
        {**JSON, "content-encoding": "br"},
        415,
        "headers.content-encoding",
    ),
    ("oip gzip body", INFER, gzip.compress(b'{"inputs": []}'), GZIPPED, 415, "headers.content-encoding"),
    (
        "form content type",
        "/predict",
        b'{"features": [5.1, 3.5, 1.4, 0.2]}',
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "headers.content-type",
    ),
    (
        "text content type",
        "/predict",
        b'{"features": [5.1, 3.5, 1.4, 0.2]}',
        {"content-type": "text/plain"},
        415,
        "headers.content-type",
    ),
    (
        "+json content type outside application/",
        "/predict/batch",
        b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
        {"content-type": "text/vnd.api+json"},
        415,
        "headers.content-type",
    ),
    (
        "oip text content type",
        INFER,
        b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}',
        {"content-type": "text/plain"},
        415,
        "headers.content-type",
    ),
    (
        "no content type",
        "/predict/batch",
        b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
        {},
        415,
        "headers.content-type",
    ),
    ("body is a list", "/predict", b"[5.1, 3.5, 1.4, 0.2]", JSON, 422, "$"),
    ("missing features", "/predict", b'{"feature": [5.1, 3.5, 1.4, 0.2]}', JSON, 422, "$.features"),
    ("features a string", "/predict", b'{"features": "5.1,3.5,1.4,0.2"}', JSON, 422, "$.features"),
    ("feature a string", "/predict", b'{"features": [5.1, "3.5", 1.4, 0.2]}', JSON, 422, "$.features[1]"),
    ("feature a bool", "/predict", b'{"features": [5.1, 3.5, true, 0.2]}', JSON, 422, "$.features[2]"),
    ("feature null", "/predict", b'{"features": [5.1, 3.5, 1.4, null]}', JSON, 422, "$.features[3]"),
    ("three features", "/predict", b'{"features": [5.1, 3.5, 1.4]}', JSON, 422, "$.features"),
    ("five features", "/predict", b'{"features": [5.1, 3.5, 1.4, 0.2, 9]}', JSON, 422, "$.features"),
    ("NaN token", "/predict", b'{"features": [NaN, 3.5, 1.4, 0.2]}', JSON, 422, "$.features[0]"),
    ("Infinity token", "/predict", b'{"features": [5.1, Infinity, 1.4, 0.2]}', JSON, 422, "$.features[1]"),
    ("-Infinity token", "/predict", b'{"features": [5.1, 3.5, -Infinity, 0.2]}', JSON, 422, "$.features[2]"),
    ("overflows float64", "/predict", b'{"features": [5.1, 3.5, 1.4, 1e400]}', JSON, 422, "$.features[3]"),
    ("overflows float32", "/predict", b'{"features": [5.1, 3.5, 1e39, 0.2]}', JSON, 422, "$.features[2]"),
    ("instances missing", "/predict/batch", b'{"features": [5.1, 3.5, 1.4, 0.2]}', JSON, 422, "$.instances"),
    ("empty batch", "/predict/batch", b'{"instances": []}', JSON, 422, "$.instances"),
    (
        "instance not a list",
        "/predict/batch",
        b'{"instances": [[5.1, 3.5, 1.4, 0.2], 7]}',
        JSON,
        422,
        "$.instances[1]",
    ),
    (
        "instance wrong type",
        "/predict/batch",
        b'{"instances": [[5.1, 3.5, 1.4, 0.2], [1, 2, "x", 4]]}',
        JSON,
        422,
        "$.instances[1][2]",
    ),
    (
        "ragged batch",
        "/predict/batch",
        b'{"instances": [[5.1, 3.5, 1.4, 0.2], [1, 2, 3]]}',
        JSON,
        422,
        "$.instances[1]",
    ),
    (
        "all rows short",
        "/predict/batch",
        b'{"instances": [[1, 2, 3], [1, 2, 3]]}',
        JSON,
        422,
        "$.instances[0]",
    ),
    (
        "NaN in batch",
        "/predict/batch",
        b'{"instances": [[5.1, 3.5, 1.4, 0.2], [1, 2, 3, NaN]]}',
        JSON,
        422,
        "$.instances[1][3]",
    ),
    ("unknown model", "/v2/models/resnet/infer", b'{"inputs": []}', JSON, 404, "model_name"),
    ("unknown model metadata", "/v2/models/resnet", None, {}, 404, "model_name"),
    ("unknown model version", "/v2/models/sklearn-iris/versions/9/infer", b"{}", JSON, 404, "model_version"),
    ("oip no inputs", INFER, b'{"inputs": []}', JSON, 400, "$.inputs"),
    ("oip inputs missing", INFER, b'{"id": "1"}', JSON, 422, "$.inputs"),
    (
        "oip bytes datatype",
        INFER,
        tensor(["a", "b", "c", "d"], datatype="BYTES"),
        JSON,
        400,
        "$.inputs[0].datatype",
    ),
    # Numbers in the data, so the datatype alone is what gets them refused.
    ("oip bool datatype", INFER, tensor(GOOD, datatype="BOOL"), JSON, 400, "$.inputs[0].datatype"),
    ("oip unknown datatype", INFER, tensor(GOOD, datatype="FLOAT32"), JSON, 400, "$.inputs[0].datatype"),
    ("oip wrong shape", INFER, tensor(GOOD, shape=(4,)), JSON, 400, "$.inputs[0].shape"),
    ("oip data too short", INFER, tensor(GOOD[:3]), JSON, 400, "$.inputs[0].data"),
    ("oip data wrong type", INFER, tensor([5.1, "x", 1.4, 0.2]), JSON, 422, "$.inputs[0].data[1]"),
    ("oip empty tensor", INFER, tensor([], shape=(0, 4)), JSON, 422, "$.inputs[0].data"),
    (
        "oip nested data fewer rows than shape",
        INFER,
        tensor([GOOD], shape=(2, 4)),
        JSON,
        400,
        "$.inputs[0].data",
    ),
    (
        "oip nested data more rows than shape",
        INFER,
        tensor([GOOD, GOOD], shape=(1, 4)),
        JSON,
        400,
        "$.inputs[0].data",
    ),
    (
        # A row that contradicts the declared shape, like flat data of the wrong length: a 400.
        "oip nested rows short",
        INFER,
        tensor([[5.1, 3.5, 1.4]], shape=(1, 4)),
        JSON,
        400,
        "$.inputs[0].data[0]",
    ),
    (
        "oip NaN",
        INFER,
        b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", '
        b'"data": [5.1, NaN, 1.4, 0.2]}]}',
        JSON,
        422,
        "$.inputs[0].data[1]",  # flat data is named by its flat index, as the client wrote it
    ),
    (
        "oip NaN in the second row of flat data",
        INFER,
        b'{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", '
        b'"data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, NaN, 1.6]}]}',
        JSON,
        422,
        "$.inputs[0].data[6]",
    ),
    (
        "oip NaN in nested data",
        INFER,
        b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", '
        b'"data": [[5.1, NaN, 1.4, 0.2]]}]}',
        JSON,
        422,
        "$.inputs[0].data[0][1]",
    ),
    (
        "oip flat row beyond what the model scores",
        INFER,
        tensor([*GOOD, 1e38, 1e38, 1e38, 1e38], shape=(2, 4)),
        JSON,
        422,
        "$.inputs[0].data[4:8]",
    ),
    (
        # Valid JSON, but no Unicode text: a JavaScript client that cut a string inside an emoji.
        "oip id with a lone surrogate",
        INFER,
        b'{"id": "\\ud800", '
        b'"inputs": [{"name": "a", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}',
        JSON,
        400,
        "$.id",
    ),
    (
        "oip not utf-8 inside a string",
        INFER,
        b'{"inputs": [{"name": "\xff", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}',
        JSON,
        400,
        "$",
    ),
    (
        "oip row beyond what the model scores",
        INFER,
        tensor([GOOD, [1e38, 1e38, 1e38, 1e38]], shape=(2, 4)),
        JSON,
        422,
        "$.inputs[0].data[1]",
    ),
    (
        "oip unknown output",
        INFER,
        {**tensor(GOOD), "outputs": [{"name": "logits"}]},
        JSON,
        400,
        "$.outputs[0].name",
    ),
]


def _send(client: TestClient, path: str, body: Any, headers: dict[str, str] | list[tuple[str, str]]):
    if body is None:
        return client.get(path, headers=headers)
    if isinstance(body, dict):
        return client.post(path, json=body)
    return client.post(path, content=body, headers=headers)


@pytest.fixture(scope="module")
def table_client(model_dir: Path) -> Iterator[TestClient]:
    """One started app for the whole table: no answer in it depends on the requests before it."""
    with TestClient(create_app(Settings(model_dir=model_dir))) as client:
        wait_until_ready(client)
        yield client


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "field"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_is_refused_naming_the_field(
    table_client: TestClient, path: str, body: Any, headers: dict[str, str], status: int, field: str
) -> None:
    response = _send(table_client, path, body, headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["field"] == field
    named = "request body" if field == "$" else field.removeprefix("headers.").replace("_", " ")
    assert named in error["error"].lower()
    assert "Traceback" not in response.text


@pytest.fixture(scope="module")
def framework_client(model_dir: Path) -> Iterator[TestClient]:
    """The same app with its hot path switched off: FastAPI's own handlers answer /predict too."""
    app = create_app(Settings(model_dir=model_dir))
    app.hot_path = None
    with TestClient(app) as client:
        wait_until_ready(client)
        yield client


#: application/*+json media types: JSON too, as guards.require_json's docstring says.
JSON_SUFFIX_TYPES = ["application/vnd.api+json", "application/merge-patch+json; charset=utf-8"]
GOOD_BODIES = [
    ("/predict", b'{"features": [5.1, 3.5, 1.4, 0.2]}'),
    ("/predict/batch", b'{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'),
    (INFER, b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}'),
]


@pytest.mark.parametrize("content_type", JSON_SUFFIX_TYPES)
@pytest.mark.parametrize(("path", "body"), GOOD_BODIES, ids=[path for path, _ in GOOD_BODIES])
def test_a_json_content_type_with_a_plus_json_suffix_is_accepted(
    table_client: TestClient, path: str, body: bytes, content_type: str
) -> None:
    response = table_client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert "error" not in response.json()


@pytest.mark.parametrize(("path", "body"), GOOD_BODIES, ids=[path for path, _ in GOOD_BODIES])
@pytest.mark.parametrize("app_client", ["table_client", "framework_client"])
def test_a_415_for_an_encoded_body_names_the_coding_accepted(
    request: pytest.FixtureRequest, app_client: str, path: str, body: bytes
) -> None:
    """RFC 9110 (15.5.16): a 415 for a content coding says in Accept-Encoding which codings would do."""
    client: TestClient = request.getfixturevalue(app_client)
    response = client.post(path, content=gzip.compress(body), headers=GZIPPED)
    assert response.status_code == 415
    assert response.headers["accept-encoding"] == "identity"


HOT_CASES = [
    ("good one", "/predict", {"features": GOOD}, JSON, 200, None),
    ("good one as +json", "/predict", GOOD_BODIES[0][1], {"content-type": JSON_SUFFIX_TYPES[0]}, 200, None),
    ("good batch", "/predict/batch", {"instances": [GOOD, [6.7, 3.0, 5.2, 2.3]]}, JSON, 200, None),
    *(case for case in CASES if case[1] in HOT_ROUTES),
]


@pytest.mark.parametrize(
    ("path", "body", "headers"), [case[1:4] for case in HOT_CASES], ids=[case[0] for case in HOT_CASES]
)
def test_the_hot_path_answers_as_the_fastapi_handlers_do(
    table_client: TestClient, framework_client: TestClient, path: str, body: Any, headers: dict[str, str]
) -> None:
    hot, framework = _send(table_client, path, body, headers), _send(framework_client, path, body, headers)
    assert hot.status_code == framework.status_code
    assert hot.headers["content-type"] == framework.headers["content-type"]
    hot_body, framework_body = hot.json(), framework.json()
    if hot.status_code == 200:
        del hot_body["processing_time_ms"], framework_body["processing_time_ms"]
    assert hot_body == framework_body


def test_an_unexpected_error_on_a_hot_route_is_a_json_500_with_the_request_id(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(client.app.state.service.predictor, "predict_one", broken)
    response = client.post("/predict", json={"features": GOOD}, headers={"X-Request-ID": "bug-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "bug-1"
    assert "X-Request-ID" in response.json()["error"]
    assert "a bug" not in response.text


def test_an_unexpected_error_on_a_fastapi_route_is_a_json_500_with_the_request_id(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    # As a client sees it: the 500 Starlette sends, not the exception TestClient re-raises by default.
    with TestClient(create_app(Settings(model_dir=model_dir)), raise_server_exceptions=False) as client:
        wait_until_ready(client)
        monkeypatch.setattr(client.app.state.service.predictor, "probabilities", broken)
        response = client.post(INFER, json=tensor(GOOD), headers={"X-Request-ID": "bug-2"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "bug-2"
    assert "a bug" not in response.text


def test_a_body_refused_by_its_length_is_counted_under_its_route(client: TestClient) -> None:
    series = 'ml_inference_requests_total{method="POST",route="/v2/models/{model_name}/infer",status="413"} '

    def counted() -> float:
        return float(client.get("/metrics").text.split(series, 1)[1].split("\n", 1)[0])

    before = counted()
    too_large = b"x" * (client.app.state.settings.max_body_bytes + 1)
    assert client.post(INFER, content=too_large, headers=JSON).status_code == 413
    assert counted() == before + 1


def test_a_client_gone_before_its_body_arrived_gets_no_answer_and_is_counted_as_499(
    client: TestClient,
) -> None:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": [(b"content-type", b"application/json")],
        "client": None,
    }
    asyncio.run(client.app(scope, receive, send))
    assert sent == []
    assert (
        'ml_inference_requests_total{method="POST",route="/predict",status="499"} 1.0'
        in client.get("/metrics").text
    )


def test_batch_over_max_batch_is_413(make_client) -> None:
    client = make_client(max_batch=3)
    assert client.post("/predict/batch", json={"instances": [GOOD] * 3}).status_code == 200
    response = client.post("/predict/batch", json={"instances": [GOOD] * 4})
    assert response.status_code == 413
    assert response.json()["field"] == "$.instances"
    assert "at most 3" in response.json()["error"]
    response = client.post(INFER, json=tensor(GOOD * 4, shape=(4, 4)))
    assert response.status_code == 413
    assert response.json()["field"] == "$.inputs[0].data"


def test_body_over_limit_is_413_from_content_length(make_client) -> None:
    client = make_client(max_body_bytes=1024)
    response = client.post("/predict/batch", json={"instances": [GOOD] * 100})
    assert response.status_code == 413
    assert response.json()["field"] == "$"
    assert "1024 bytes" in response.json()["error"]


def test_streamed_body_over_limit_is_refused_before_it_is_read_whole(make_client) -> None:
    client = make_client(max_body_bytes=1024)
    sent = []

    def chunks():
        # No Content-Length: the server has to count while the body arrives.
        yield b'{"instances": ['
        for _ in range(1000):
            sent.append(1)
            yield b"[5.1, 3.5, 1.4, 0.2],"
        yield b"[5.1, 3.5, 1.4, 0.2]]}"

    response = client.post("/predict/batch", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["field"] == "$"


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert "GET / lists the endpoints" in response.json()["error"]
    response = client.get("/predict")
    assert response.status_code == 405
    assert "GET is not allowed" in response.json()["error"]


def test_a_405_allows_head_wherever_it_allows_get(client: TestClient) -> None:
    # RFC 9110: Allow lists the methods the resource supports, and GET routes answer HEAD too.
    response = client.post("/health")
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
    response = client.head("/predict")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")


@pytest.fixture
def blocked_loading(model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """An app whose model load waits for a go-ahead: the window every real start has, held open."""
    go = threading.Event()

    def slow_model(path: Path) -> IrisModel:
        go.wait(timeout=30)
        return IrisModel(path)

    monkeypatch.setattr(app_module, "IrisModel", slow_model)
    with TestClient(create_app(Settings(model_dir=model_dir))) as client:
        yield client, go
        go.set()


def test_every_request_before_ready_is_503(blocked_loading) -> None:
    client, go = blocked_loading
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json() == {"status": "not ready", "reason": "model is loading"}
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/models/sklearn-iris/ready").status_code == 503
    for path, body in (
        ("/predict", {"features": GOOD}),
        ("/predict/batch", {"instances": [GOOD]}),
        (INFER, tensor(GOOD)),
    ):
        response = client.post(path, json=body)
        assert response.status_code == 503, path
        assert "not ready" in response.json()["error"]
    assert client.get("/v2/models/sklearn-iris").status_code == 503
    go.set()
    wait_until_ready(client)
    assert client.post("/predict", json={"features": GOOD}).status_code == 200


def _not_ready_reason(model_dir: Path) -> str:
    with TestClient(create_app(Settings(model_dir=model_dir))) as client:
        for _ in range(500):
            reason = client.get("/ready").json().get("reason")
            if reason != "model is loading":
                break
            time.sleep(0.01)
        assert client.post("/predict", json={"features": GOOD}).status_code == 503
        assert reason == "model failed to load; the service's log says why"
        # What the log line says: file paths and digests stay out of HTTP answers.
        return client.app.state.service.load_error  # type: ignore[attr-defined]


def test_a_model_that_does_not_match_its_card_is_never_served(model_dir: Path, tmp_path: Path) -> None:
    for name in ("model.onnx", "model-card.json"):
        (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    with (tmp_path / "model.onnx").open("ab") as artifact:
        artifact.write(b"tampered")
    assert "sha256" in _not_ready_reason(tmp_path)


def test_a_model_that_is_not_onnx_is_refused_with_a_reason(card: ModelCard, tmp_path: Path) -> None:
    garbage = b"not an onnx model"
    (tmp_path / "model.onnx").write_bytes(garbage)
    replace(card, artifact_sha256=hashlib.sha256(garbage).hexdigest()).write(tmp_path / "model-card.json")
    assert "not a loadable ONNX model" in _not_ready_reason(tmp_path)
