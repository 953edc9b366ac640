"""Limits on what one request can cost a replica: answer size, and the errors that enforce it."""

from __future__ import annotations

from fastapi.testclient import TestClient

INFER = "/v2/models/sklearn-iris/infer"
ROW = [5.1, 3.5, 1.4, 0.2]


def _infer_body(rows: int, outputs: list[str] | None = None) -> dict:
    body: dict = {
        "id": "limits",
        "inputs": [{"name": "input-0", "shape": [rows, 4], "datatype": "FP32", "data": ROW * rows}],
    }
    if outputs is not None:
        body["outputs"] = [{"name": name} for name in outputs]
    return body


def test_a_repeated_output_name_is_refused_with_a_400_naming_it(client: TestClient) -> None:
    response = client.post(INFER, json=_infer_body(2, ["label", "probabilities", "label"]))
    assert response.status_code == 400
    assert response.json()["field"] == "$.outputs[2].name"
    assert "more than once" in response.json()["error"]


def test_an_output_listed_thousands_of_times_gets_no_amplified_answer(client: TestClient) -> None:
    response = client.post(INFER, json=_infer_body(1000, ["probabilities"] * 3000))
    assert response.status_code == 400
    assert len(response.content) < 1000


def test_an_unknown_output_name_is_refused_with_a_400_naming_it(client: TestClient) -> None:
    response = client.post(INFER, json=_infer_body(1, ["label", "logits"]))
    assert response.status_code == 400
    assert response.json()["field"] == "$.outputs[1].name"


def test_no_answer_is_larger_than_all_outputs_once(client: TestClient) -> None:
    full = client.post(INFER, json=_infer_body(50))
    assert full.status_code == 200
    for outputs in (["label"], ["probabilities", "output-0"], ["output-0", "label", "probabilities"]):
        answer = client.post(INFER, json=_infer_body(50, outputs))
        assert answer.status_code == 200
        # processing_time_ms may take a few more digits in one answer than in the other.
        assert len(answer.content) <= len(full.content) + 16
