"""Take a full-page screenshot of the report in a real headless Chromium.

Chromium's `--screenshot` flag only captures the window, so the screenshot drives the browser over
the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages ended by NUL on fds 3 and
4), which needs no port and no extra package: size the viewport to the page's height, then capture it.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import math
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
)
VIEWPORT_WIDTH = 1280
TIMEOUT_SECONDS = 60.0
#: Chromium limits a capture's height; longer pages are cut there.
MAX_HEIGHT = 16_000


class BrowserError(RuntimeError):
    """Chromium could not render the page; the message says why."""


def find_chromium() -> str | None:
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def _stop(process: subprocess.Popen) -> None:
    """Stop the browser and every helper process it forked (they share its new session)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=5)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class _DevTools:
    """A minimal DevTools protocol client over Chromium's debugging pipe."""

    def __init__(self, commands: int, replies: int, deadline: float) -> None:
        self.commands, self.replies, self.deadline = commands, replies, deadline
        self.ids = itertools.count(1)
        self.buffer = b""
        self.events: list[dict[str, Any]] = []

    def _read_message(self) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.replies], [], [], remaining)[0]:
                raise BrowserError("chromium did not answer in time")
            chunk = os.read(self.replies, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed the debugging pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        message = {"id": message_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise BrowserError(f"{method} failed: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._read_message())


@contextlib.contextmanager
def _browser(chromium: str) -> Iterator[_DevTools]:
    command_read, command_write = os.pipe()
    reply_read, reply_write = os.pipe()
    # Chromium reads commands on fd 3 and writes replies to fd 4: a shell puts the pipes there.
    wire_pipe = f'exec "$@" 3<&{command_read} 4>&{reply_write}'
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        command = [
            "/bin/sh", "-c", wire_pipe, "sh",
            chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank",
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(command_read, reply_write),
            start_new_session=True,
        )
        os.close(command_read)
        os.close(reply_write)
        try:
            yield _DevTools(command_write, reply_read, time.monotonic() + TIMEOUT_SECONDS)
        finally:
            os.close(command_write)
            os.close(reply_read)
            _stop(process)


def screenshot(chromium: str, page: Path, png: Path) -> tuple[int, int]:
    """Save a full-page PNG of `page` (as wide as a laptop screen); returns its (width, height)."""
    with _browser(chromium) as devtools:
        target = devtools.send("Target.createTarget", url="about:blank")["targetId"]
        session = devtools.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        devtools.send("Page.enable", session)
        metrics = {"deviceScaleFactor": 1, "mobile": False, "width": VIEWPORT_WIDTH}
        devtools.send("Emulation.setDeviceMetricsOverride", session, height=800, **metrics)
        devtools.send("Page.navigate", session, url=page.resolve().as_uri())
        devtools.wait_for("Page.loadEventFired")
        layout = devtools.send("Page.getLayoutMetrics", session)
        size = layout.get("cssContentSize") or layout["contentSize"]
        height = min(math.ceil(size["height"]), MAX_HEIGHT)
        devtools.send("Emulation.setDeviceMetricsOverride", session, height=height, **metrics)
        data = devtools.send("Page.captureScreenshot", session, format="png")["data"]
        png.write_bytes(base64.b64decode(data))
        with contextlib.suppress(BrowserError):  # it may close the pipe before answering
            devtools.send("Browser.close")
    return VIEWPORT_WIDTH, height
