"""The deployed API answers as the service's README says: probes, predictions, OIP v2, clear 4xx errors."""

from __future__ import annotations

import math

import httpx
import pytest

from pipeline.samples import SETOSA, VERSICOLOR, VIRGINICA, batch_body, predict_body

MODEL = "sklearn-iris"
CLASSES = {"setosa", "versicolor", "virginica"}


def test_health_is_ok(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_once_the_model_is_loaded(client: httpx.Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_predict_classifies_a_setosa(client: httpx.Client) -> None:
    response = client.post("/predict", json=predict_body(SETOSA))
    assert response.status_code == 200
    body = response.json()
    assert body["prediction"] == "setosa"
    assert set(body["probabilities"]) == CLASSES
    assert math.isclose(sum(body["probabilities"].values()), 1.0, abs_tol=1e-3)
    assert body["model"]["name"] == MODEL


def test_batch_keeps_input_order(client: httpx.Client) -> None:
    instances = [VIRGINICA, SETOSA, VERSICOLOR, SETOSA]
    response = client.post("/predict/batch", json=batch_body(instances))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(instances)
    singles = [client.post("/predict", json=predict_body(row)).json()["prediction"] for row in instances]
    assert [item["prediction"] for item in body["predictions"]] == singles
    assert singles[1] == singles[3] == "setosa"


def test_oip_infer_echoes_the_request_id(client: httpx.Client) -> None:
    request = {
        "id": "pipeline-api-check-1",
        "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": [*SETOSA, *VIRGINICA]}],
    }
    response = client.post(f"/v2/models/{MODEL}/infer", json=request)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "pipeline-api-check-1"
    assert body["model_name"] == MODEL
    assert body["outputs"], "an infer response carries at least one output"
    assert all(output["shape"][0] == 2 for output in body["outputs"])


def test_oip_model_is_ready(client: httpx.Client) -> None:
    assert client.get(f"/v2/models/{MODEL}/ready").status_code == 200


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/predict", {}, "$.features"),
        ("/predict", {"features": [5.1, 3.5, 1.4]}, "$.features"),
        ("/predict", {"features": ["wide", 3.5, 1.4, 0.2]}, "$.features[0]"),
        ("/predict/batch", batch_body([SETOSA, [1.0, 2.0]]), "$.instances[1]"),
        ("/predict/batch", {"instances": []}, "$.instances"),
    ],
    ids=["missing-features", "three-features", "text-feature", "ragged-batch", "empty-batch"],
)
def test_bad_input_gets_a_4xx_naming_the_field(
    client: httpx.Client, route: str, body: dict, field: str
) -> None:
    response = client.post(route, json=body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()
    assert error["field"] == field
    assert field.removeprefix("$.").split("[")[0] in error["error"]


def test_malformed_json_gets_a_400(client: httpx.Client) -> None:
    response = client.post(
        "/predict", content=b'{"features": [5.1,', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


def test_oip_wrong_shape_gets_a_4xx(client: httpx.Client) -> None:
    request = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [5.1, 3.5, 1.4]}]}
    response = client.post(f"/v2/models/{MODEL}/infer", json=request)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]
