"""Training is reproducible and writes an ONNX model with a complete model card."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ml_inference.__main__ import main
from ml_inference.model import CARD_FILE, MODEL_FILE, MODEL_NAME, ModelCard


def test_card_describes_the_artifact(model_dir: Path, card: ModelCard) -> None:
    assert card.name == MODEL_NAME
    assert card.artifact_sha256 == hashlib.sha256((model_dir / MODEL_FILE).read_bytes()).hexdigest()
    assert card.version.endswith(card.artifact_sha256[:12])
    assert card.split == {"train": 112, "test": 38, "seed": 42}
    assert card.test_accuracy > 0.85
    assert card.class_names == ["setosa", "versicolor", "virginica"]
    assert len(card.feature_names) == 4
    assert {"scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "python"} <= set(
        card.library_versions
    )
    assert set(json.loads((model_dir / CARD_FILE).read_text())) == {
        "name",
        "version",
        "artifact_sha256",
        "library_versions",
        "split",
        "test_accuracy",
        "feature_names",
        "class_names",
        "created_by",
    }


def test_two_runs_write_identical_artifacts(model_dir: Path, tmp_path: Path) -> None:
    assert main(["train", "--out", str(tmp_path)]) == 0
    assert (tmp_path / MODEL_FILE).read_bytes() == (model_dir / MODEL_FILE).read_bytes()
    assert (tmp_path / CARD_FILE).read_text() == (model_dir / CARD_FILE).read_text()
