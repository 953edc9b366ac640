"""Repo-level test helpers.

Tests that need an outside program (dockerd, prometheus, chromium, ...) skip on a developer's
machine without it, but fail in CI (`CI=true`), where `.ci/run` installs and starts all of them:
a green CI can then never hide a skipped check.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def missing(message: str) -> None:
    """Skip the test on a developer's machine, fail it in CI, saying what is missing."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_program(name: str, *, probe: list[str] | None = None) -> str:
    """Path of `name`, or skip (fail in CI) naming what is missing and how to get it."""
    path = shutil.which(name)
    ok = path is not None
    if ok and probe is not None:
        ok = subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    if not ok:
        missing(f"{name} is not available here; .ci/run installs it (see README)")
    return str(path)


def require_env(name: str, how: str) -> str:
    """The value of environment variable `name`, or skip (fail in CI) saying `how` to set it."""
    value = os.environ.get(name)
    if not value:
        missing(f"{name} is not set; {how}")
    return str(value)
