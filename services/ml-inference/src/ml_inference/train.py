"""Train the iris classifier and export it to ONNX with its model card.

Training needs the `train` extra (scikit-learn, skl2onnx, onnx); serving does not: the runtime
loads only the ONNX file, so scikit-learn and SciPy stay out of the image and nothing is ever
unpickled. Everything is seeded, so two runs with the same library versions write byte-identical
artifacts (and therefore the same version).
"""

from __future__ import annotations

import hashlib
import platform
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from ml_inference import __version__
from ml_inference.model import CARD_FILE, MODEL_FILE, MODEL_NAME, ModelCard

SEED = 42
TEST_FRACTION = 0.25
# Pinned so that the exported graph does not change when skl2onnx learns a newer opset.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
RECORDED_LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "numpy", "onnxruntime")


def train(out_dir: Path) -> ModelCard:
    """Fit, evaluate and export the model into `out_dir`; return the card written beside it."""
    try:
        from skl2onnx import to_onnx
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as error:
        raise SystemExit(
            f"training needs the 'train' extra ({error.name} is missing): pip install 'ml-inference[train]'"
        ) from error

    iris = load_iris()
    features = iris.data.astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(
        features, iris.target, test_size=TEST_FRACTION, random_state=SEED, stratify=iris.target
    )
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    classifier.fit(x_train, y_train)
    accuracy = float(accuracy_score(y_test, classifier.predict(x_test)))

    # zipmap=False: probabilities come out as one float tensor, not a list of dicts per row,
    # which is what both the REST and the OIP v2 handlers want and is much cheaper to run.
    onnx_model = to_onnx(
        classifier,
        x_train[:1],
        options={"zipmap": False},
        target_opset=TARGET_OPSET,
    )
    onnx_model.doc_string = "scikit-learn LogisticRegression on the iris data set"
    artifact = onnx_model.SerializeToString()
    digest = hashlib.sha256(artifact).hexdigest()

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MODEL_FILE).write_bytes(artifact)
    card = ModelCard(
        name=MODEL_NAME,
        version=f"{__version__}+{digest[:12]}",
        artifact_sha256=digest,
        library_versions=_library_versions(),
        split={"train": len(x_train), "test": len(x_test), "seed": SEED},
        test_accuracy=round(accuracy, 6),
        feature_names=[_feature_name(name) for name in iris.feature_names],
        class_names=[str(name) for name in iris.target_names],
        created_by=f"ml_inference {__version__} train",
    )
    card.write(out_dir / CARD_FILE)
    return card


def _feature_name(sklearn_name: str) -> str:
    """'sepal length (cm)' -> 'sepal_length_cm': names that work as JSON keys and labels."""
    return sklearn_name.replace(" (", "_").replace(")", "").replace(" ", "_")


def _library_versions() -> dict[str, Any]:
    versions = {name: package_version(name) for name in RECORDED_LIBRARIES}
    versions["python"] = platform.python_version()
    return versions
