"""The model: trained by the service's own `train` step, reused when nothing that shapes it changed.

Training is seeded, so the same training code with the same libraries writes byte-identical
artifacts. The cache key is therefore the service's source plus every installed distribution's
version and the Python version: any change to any of them trains again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pipeline.artifacts import read_json
from pipeline.build import BuildError
from pipeline.build.content import files_digest

log = logging.getLogger(__name__)

CARD_FILE = "model-card.json"


def training_key(service_dir: Path) -> str:
    """Hash of the service's source and of the training environment (Python and every package)."""
    packages = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    environment = f"python {platform.python_version()}\n" + "\n".join(packages)
    source = files_digest(service_dir, ("pyproject.toml", "src"))
    return hashlib.sha256(f"{source}\n{environment}".encode()).hexdigest()[:16]


def train_model(
    service_dir: Path, model_dir: Path, cache_dir: Path, *, retrain: bool = False
) -> dict[str, Any]:
    """Fill `model_dir` with model.onnx and its card, training unless an identical model is cached."""
    cached = cache_dir / "model" / training_key(service_dir)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    if (cached / CARD_FILE).is_file() and not retrain:
        shutil.copytree(cached, model_dir)
        log.info("train: same source and libraries as an earlier run; reusing its model from %s", cached)
    else:
        log.info("train: training the model into %s", model_dir)
        result = subprocess.run([sys.executable, "-m", "ml_inference", "train", "--out", str(model_dir)])
        if result.returncode != 0 or not (model_dir / CARD_FILE).is_file():
            raise BuildError(f"training failed (python -m ml_inference train exited {result.returncode})")
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".partial-"))
        shutil.copytree(model_dir, partial, dirs_exist_ok=True)
        try:
            os.replace(partial, cached)
        except OSError:  # an entry is there already
            if not (cached / CARD_FILE).is_file():  # a broken one, never read: ours takes its place
                shutil.rmtree(cached, ignore_errors=True)
                with contextlib.suppress(OSError):
                    os.replace(partial, cached)
            # Else the same model (training is deterministic), maybe being copied by another run: kept.
            shutil.rmtree(partial, ignore_errors=True)
    card = read_json(model_dir / CARD_FILE)
    if card is None:
        raise BuildError(f"{model_dir / CARD_FILE} is not valid JSON")
    return card
