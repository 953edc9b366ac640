"""Open Inference Protocol v2: a KServe-style client's requests work unchanged."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ml_inference.model import ModelCard

INFER = "/v2/models/sklearn-iris/infer"
# The two instances of KServe's sklearn-iris example request.
KSERVE_EXAMPLE = {
    "id": "d3b15cad-50a2-4eaf-80ce-8b0a428bd298",
    "inputs": [
        {
            "name": "input-0",
            "shape": [2, 4],
            "datatype": "FP32",
            "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6],
        }
    ],
}


def test_health_and_server_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "ml-inference"
    assert client.get("/v2/models/sklearn-iris/ready").json() == {"name": "sklearn-iris", "ready": True}


def test_a_model_version_answers_its_readiness(client: TestClient, card: ModelCard) -> None:
    ready = client.get(f"/v2/models/sklearn-iris/versions/{card.version}/ready")
    assert ready.status_code == 200 and ready.json() == {"name": "sklearn-iris", "ready": True}
    unknown = client.get("/v2/models/sklearn-iris/versions/9/ready")
    assert unknown.status_code == 404 and unknown.json()["field"] == "model_version"


def test_model_metadata(client: TestClient, card: ModelCard) -> None:
    body = client.get("/v2/models/sklearn-iris").json()
    assert body["name"] == "sklearn-iris"
    assert body["versions"] == [card.version]
    assert body["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
    assert client.get(f"/v2/models/sklearn-iris/versions/{card.version}").status_code == 200


def test_kserve_example_request(client: TestClient, card: ModelCard) -> None:
    response = client.post(INFER, json=KSERVE_EXAMPLE)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == KSERVE_EXAMPLE["id"]
    assert body["model_name"] == "sklearn-iris"
    assert body["model_version"] == card.version
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["output-0"] == {"name": "output-0", "datatype": "INT64", "shape": [2], "data": [1, 1]}
    assert outputs["label"]["data"] == ["versicolor", "versicolor"]
    probabilities = outputs["probabilities"]
    assert probabilities["shape"] == [2, 3]
    assert sum(probabilities["data"][:3]) == pytest.approx(1.0, abs=1e-5)


def test_infer_agrees_with_rest_and_accepts_nested_data(client: TestClient) -> None:
    rows = [[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2]]
    nested = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": rows}]}
    body = client.post(INFER, json=nested).json()
    rest = client.post("/predict/batch", json={"instances": rows}).json()
    labels = next(output for output in body["outputs"] if output["name"] == "label")["data"]
    assert labels == [prediction["prediction"] for prediction in rest["predictions"]]
    assert len(body["id"]) == 36  # made up when the request has none


def test_requested_outputs_only(client: TestClient, card: ModelCard) -> None:
    request = {**KSERVE_EXAMPLE, "outputs": [{"name": "label"}]}
    body = client.post(f"/v2/models/sklearn-iris/versions/{card.version}/infer", json=request).json()
    assert [output["name"] for output in body["outputs"]] == ["label"]
