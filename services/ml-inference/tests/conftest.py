"""Fixtures: one trained model per test session, and apps built through the factory."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ml_inference.app import create_app
from ml_inference.model import ModelCard
from ml_inference.settings import Settings
from ml_inference.train import train

READY_TIMEOUT_SECONDS = 10


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    train(out)
    return out


@pytest.fixture(scope="session")
def card(model_dir: Path) -> ModelCard:
    return ModelCard.read(model_dir / "model-card.json")


def require_program(name: str) -> str:
    """Path of the outside program `name`, or skip the test on a developer's machine and fail it in CI.

    The repo's rule (tests/helpers.py): with `CI=true` a missing program is a failure, so a green CI
    never hides a skipped check. Kept here so the service's tests import nothing from the repo's.
    """
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not available here; scripts/install-test-deps.sh installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def wait_until_ready(client: TestClient) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, "the model did not load in time"
        time.sleep(0.01)


@pytest.fixture
def make_client(model_dir: Path) -> Iterator:
    """Build a started app with settings overrides; waits until its model is loaded."""
    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        client = TestClient(create_app(Settings(model_dir=model_dir, **overrides)))
        client.__enter__()
        clients.append(client)
        wait_until_ready(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(model_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_dir=model_dir))) as client:
        wait_until_ready(client)
        yield client
