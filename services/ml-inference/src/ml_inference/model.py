"""The served model: an ONNX file plus its model card, run by onnxruntime.

Loading checks the artifact against the sha256 in its card, so a half-copied or swapped file is
refused instead of served under the wrong version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "sklearn-iris"
MODEL_FILE = "model.onnx"
CARD_FILE = "model-card.json"
N_FEATURES = 4


class ModelLoadError(Exception):
    """The model directory cannot be served; the message says what is wrong and where."""


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    artifact_sha256: str
    library_versions: dict[str, Any]
    split: dict[str, int]
    test_accuracy: float
    feature_names: list[str]
    class_names: list[str]
    created_by: str

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> ModelCard:
        try:
            data = json.loads(path.read_text())
            return cls(**{field.name: data[field.name] for field in dataclasses.fields(cls)})
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelLoadError(f"{path} is not a readable model card: {error!r}") from error


def check_model_dir(model_dir: Path) -> None:
    """Raise ModelLoadError naming the missing file, without loading anything heavy."""
    for name in (MODEL_FILE, CARD_FILE):
        if not (model_dir / name).is_file():
            raise ModelLoadError(
                f"no model in {model_dir} ({name} is missing); "
                f"train one with: python -m ml_inference train --out {model_dir}"
            )


class IrisModel:
    """An onnxruntime session plus what the API needs to label its output."""

    def __init__(self, model_dir: Path) -> None:
        import onnxruntime

        check_model_dir(model_dir)
        self.card = ModelCard.read(model_dir / CARD_FILE)
        artifact = (model_dir / MODEL_FILE).read_bytes()
        digest = hashlib.sha256(artifact).hexdigest()
        if digest != self.card.artifact_sha256:
            raise ModelLoadError(
                f"{model_dir / MODEL_FILE} has sha256 {digest}, but its card says "
                f"{self.card.artifact_sha256}: refusing to serve a model that does not match its card"
            )
        options = onnxruntime.SessionOptions()
        # One request is a few microseconds of maths: thread pools would only add hand-offs and
        # fight the event loop for the one core a replica gets.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(
                artifact, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime's errors share no base class but Exception
            raise ModelLoadError(f"{model_dir / MODEL_FILE} is not a loadable ONNX model: {error}") from error
        self.input_name = self._session.get_inputs()[0].name
        self._probabilities_output = [self._session.get_outputs()[1].name]
        self.class_names = list(self.card.class_names)
        self._check_class_names(model_dir)

    def _check_class_names(self, model_dir: Path) -> None:
        """Refuse a card whose class names do not label the model's probability columns one to one.

        One probe row answers it whatever the graph declares (a symbolic dimension says nothing);
        served anyway, every answer would fail on the missing or extra name.
        """
        probe = np.zeros((1, N_FEATURES), dtype=np.float32)
        classes = self.predict_proba(probe).shape[1]
        if classes != len(self.class_names):
            raise ModelLoadError(
                f"{model_dir / CARD_FILE} lists {len(self.class_names)} class names but "
                f"{model_dir / MODEL_FILE} outputs {classes} classes: retrain, or fix the card's class_names"
            )

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> str:
        return self.card.version

    def predict_proba(self, instances: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, classes), for float32 `instances` of shape (n, 4)."""
        return self._session.run(self._probabilities_output, {self.input_name: instances})[0]
