"""Run the real service as a child process (`python -m ml_inference serve`) for end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from .held_loading import RELEASE_FILE

START_TIMEOUT_SECONDS = 30
HELD_LOADING = Path(__file__).with_name("held_loading.py")
POLL_SECONDS = 0.02


def wait_for(condition: Callable[[], object], message: str | Callable[[], str], timeout: float) -> None:
    """Poll until `condition()` is true; fail with `message` once `timeout` seconds have passed.

    What tests wait on instead of a fixed sleep: they go on as soon as the state they need is there.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message() if callable(message) else message
        time.sleep(POLL_SECONDS)


class ServiceProcess:
    """The service on a free port; its JSON log lines are collected in `lines`.

    With `release_load`, the model load waits until that file exists (see held_loading.py) and
    the constructor returns without waiting for readiness.
    """

    def __init__(self, model_dir: Path, *, release_load: Path | None = None, **settings: object) -> None:
        env = {**os.environ, **{f"ML_INFERENCE_{key.upper()}": str(value) for key, value in settings.items()}}
        command = [sys.executable, "-m", "ml_inference"]
        if release_load is not None:
            command = [sys.executable, str(HELD_LOADING)]
            env[RELEASE_FILE] = str(release_load)
        self.process = subprocess.Popen(
            [*command, "serve", "--port", "0", "--model-dir", str(model_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[dict] = []
        self._listening = threading.Event()
        threading.Thread(target=self._collect, daemon=True).start()
        if not self._listening.wait(START_TIMEOUT_SECONDS):
            self.stop()
            raise AssertionError(f"the service did not start: {self.lines}")
        self.port = next(line["port"] for line in self.lines if line.get("msg") == "listening")
        self.url = f"http://127.0.0.1:{self.port}"
        if release_load is None:
            self.wait_ready()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"msg": raw.rstrip()}
            self.lines.append(line)
            if line.get("msg") == "listening":
                self._listening.set()

    def wait_ready(self) -> None:
        # One client for the whole wait: a new one per probe costs an SSL context each time.
        with httpx.Client(base_url=self.url) as client:

            def ready() -> bool:
                try:
                    return client.get("/ready").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, lambda: f"the service never became ready: {self.lines}", START_TIMEOUT_SECONDS)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
