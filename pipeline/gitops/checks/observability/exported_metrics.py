"""The snapshot of series names the service exports, and the scrape that regenerates it."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from pipeline.gitops.checks.observability.layout import EXPORTED_METRICS


def read_exported_snapshot(repo_root: Path) -> set[str]:
    lines = (repo_root / EXPORTED_METRICS).read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def render_exported_snapshot(names: set[str]) -> str:
    header = (
        "# Series names the ml-inference service exports, scraped from the real app.\n"
        "# Generated: python -m pipeline.gitops.checks.observability --update-exported-metrics\n"
    )
    return header + "".join(f"{name}\n" for name in sorted(names))


def scrape_service() -> str:
    """/metrics of the real service, built by its factory with a freshly trained model.

    Needs the service installed with its `train` and `test` extras (the `tests` session has them).
    One request of each kind runs first, so labelled families carry samples too.
    """
    from fastapi.testclient import TestClient
    from ml_inference.app import create_app
    from ml_inference.settings import Settings
    from ml_inference.train import train

    with tempfile.TemporaryDirectory() as model_dir:
        train(Path(model_dir))
        with TestClient(create_app(Settings(model_dir=Path(model_dir)))) as client:
            for _ in range(500):
                if client.get("/ready").status_code == 200:
                    break
                time.sleep(0.02)
            client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
            client.post("/predict/batch", json={"instances": [[6.7, 3.0, 5.2, 2.3]]})
            client.post("/predict", json={"features": "bad"})
            return client.get("/metrics").text
