"""The batched access log: a failing stdout costs access lines (counted), never the flusher itself."""

from __future__ import annotations

import errno
import io
import logging
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ml_inference.app import create_app
from ml_inference.logs import ACCESS_LOGGER, FLUSH_SECONDS
from ml_inference.settings import Settings

from .conftest import wait_until_ready

ROW = [5.1, 3.5, 1.4, 0.2]
DROPPED = "ml_inference_access_log_lines_dropped_total"


class FailingStdout(io.StringIO):
    """stdout whose writes fail with `error` until `healthy` is set."""

    def __init__(self, error: OSError) -> None:
        super().__init__()
        self.error = error
        self.healthy = False

    def write(self, text: str) -> int:
        if not self.healthy:
            raise self.error
        return super().write(text)

    def flush(self) -> None:
        if not self.healthy:
            raise self.error


def _dropped(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(DROPPED):
            return float(line.split()[-1])
    raise AssertionError(f"{DROPPED} is not exported")


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + 50 * FLUSH_SECONDS
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(FLUSH_SECONDS / 4)


@pytest.mark.parametrize(
    "error",
    [BrokenPipeError(errno.EPIPE, "Broken pipe"), BlockingIOError(errno.EAGAIN, "try again")],
    ids=["EPIPE", "EAGAIN"],
)
def test_a_failed_write_drops_and_counts_lines_and_flushing_goes_on(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: OSError
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    stdout = FailingStdout(error)
    with TestClient(create_app(Settings(model_dir=model_dir))) as client:
        wait_until_ready(client)
        monkeypatch.setattr(sys, "stdout", stdout)
        for _ in range(20):
            assert client.post("/predict", json={"features": ROW}).status_code == 200
        _wait_for(lambda: _dropped(client) >= 20, "the lines of the failed writes were not counted")

        stdout.healthy = True
        assert client.post("/predict", json={"features": ROW}, headers={"x-request-id": "after"}).is_success
        _wait_for(lambda: '"request_id":"after"' in stdout.getvalue(), "flushing stopped after a failure")
