"""Start-up: a model that does not match its card never becomes ready, and says why in the log only."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ml_inference.app import create_app
from ml_inference.settings import Settings

LOAD_TIMEOUT_SECONDS = 10
ROW = [5.1, 3.5, 1.4, 0.2]


def _copy_model(model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return copy


def _edit_card(model: Path, **changes: object) -> None:
    card_file = model / "model-card.json"
    card_file.write_text(json.dumps({**json.loads(card_file.read_text()), **changes}))


def _started(model: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_dir=model))) as client:
        deadline = time.monotonic() + LOAD_TIMEOUT_SECONDS
        while client.app.state.service.load_error is None:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the broken model was never refused"
            time.sleep(0.01)
        yield client


@pytest.fixture
def swapped_artifact(model_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    model = _copy_model(model_dir, tmp_path)
    _edit_card(model, artifact_sha256="0" * 64)
    yield from _started(model)


def test_class_names_that_do_not_match_the_onnx_outputs_keep_the_replica_unready(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = _copy_model(model_dir, tmp_path)
    _edit_card(model, class_names=["setosa", "versicolor"])
    for client in _started(model):
        assert client.get("/ready").status_code == 503
        assert client.post("/predict", json={"features": ROW}).status_code == 503
        assert client.post("/predict/batch", json={"instances": [ROW]}).status_code == 503
        assert client.get("/v2/models/sklearn-iris").status_code == 503
    [refusal] = [record for record in caplog.records if record.getMessage() == "model failed to load"]
    assert "2 class names" in refusal.error  # type: ignore[attr-defined]
    assert "3 classes" in refusal.error  # type: ignore[attr-defined]


def test_ready_and_503_bodies_carry_no_file_path_or_digest(swapped_artifact: TestClient) -> None:
    error = swapped_artifact.app.state.service.load_error  # type: ignore[attr-defined]
    assert "0" * 64 in error  # the log's reason names the digest ...
    for response in (
        swapped_artifact.get("/ready"),
        swapped_artifact.post("/predict", json={"features": ROW}),
        swapped_artifact.get("/v2/models/sklearn-iris"),
    ):
        assert response.status_code == 503
        assert "0" * 64 not in response.text  # ... the HTTP answers do not
        assert "model.onnx" not in response.text
        assert "/" not in response.json().get("reason", response.json().get("error", ""))
