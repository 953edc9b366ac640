"""Every endpoint answers with the documented shape."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ml_inference import schemas
from ml_inference.model import ModelCard

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


def test_service_info_lists_endpoints(client: TestClient, card: ModelCard) -> None:
    response = client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["service"] == "ml-inference"
    assert body["model"] == {"name": "sklearn-iris", "version": card.version}
    assert {"/health", "/ready", "/predict", "/predict/batch", "/metrics", "/docs", "/openapi.json"} <= set(
        body["endpoints"]
    )


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_predict_one(client: TestClient, card: ModelCard) -> None:
    response = client.post("/predict", json={"features": SETOSA})
    assert response.status_code == 200
    body = response.json()
    assert body["prediction"] == "setosa"
    assert set(body["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert body["probabilities"]["setosa"] > 0.9
    assert body["model"] == {"name": "sklearn-iris", "version": card.version}
    assert body["processing_time_ms"] >= 0


def test_integers_are_numbers_too(client: TestClient) -> None:
    response = client.post("/predict", json={"features": [5, 3, 1, 0]})
    assert response.status_code == 200


def test_batch_keeps_input_order(client: TestClient) -> None:
    instances = [SETOSA, VIRGINICA, SETOSA]
    response = client.post("/predict/batch", json={"instances": instances})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [p["prediction"] for p in body["predictions"]] == ["setosa", "virginica", "setosa"]
    single = client.post("/predict", json={"features": VIRGINICA}).json()
    assert body["predictions"][1]["probabilities"] == single["probabilities"]


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    predicted = client.post(
        "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, headers={"X-Request-ID": "p-1"}
    )
    assert predicted.headers["x-request-id"] == "p-1"
    assert (
        predicted.headers["x-request-id"]
        != client.post("/predict/batch", json={"instances": [[1, 2, 3, 4]]}).headers["x-request-id"]
    )
    made = {client.get("/health").headers["x-request-id"] for _ in range(3)}
    assert len(made) == 3
    # An id that could smuggle text into logs is replaced, not echoed.
    assert client.get("/health", headers={"X-Request-ID": 'a b"c'}).headers["x-request-id"] != 'a b"c'


def test_openapi_documents_the_fast_endpoints(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path, model in (
        ("/predict", "PredictRequest"),
        ("/predict/batch", "BatchRequest"),
        ("/v2/models/{model_name}/infer", "InferRequest"),
    ):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model}"}
        assert model in schema["components"]["schemas"]
    assert "422" in schema["paths"]["/predict"]["post"]["responses"]
    assert client.get("/docs").status_code == 200


def test_documented_schemas_match_what_is_served(client: TestClient) -> None:
    for model, path in (
        (schemas.PredictRequest, "/predict"),
        (schemas.BatchRequest, "/predict/batch"),
        (schemas.InferRequest, "/v2/models/sklearn-iris/infer"),
    ):
        example = model.model_json_schema()["properties"]
        body = {name: spec["examples"][0] for name, spec in example.items() if "examples" in spec}
        response = client.post(path, json=body)
        assert response.status_code == 200, (path, response.text)
        answer_model = {
            "/predict": schemas.PredictResponse,
            "/predict/batch": schemas.BatchResponse,
            "/v2/models/sklearn-iris/infer": schemas.InferResponse,
        }[path]
        answer_model.model_validate(response.json(), strict=True)
    schemas.ServiceInfo.model_validate(client.get("/").json())
    schemas.ModelMetadata.model_validate(client.get("/v2/models/sklearn-iris").json())
    schemas.ServerReadiness.model_validate(client.get("/v2/health/ready").json())
