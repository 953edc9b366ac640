"""The API suite: pytest tests of a deployed endpoint, run by the test job (not the repo's unit tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SUITE_DIR = Path(__file__).parent
#: Bounds the whole suite; each request has its own shorter timeout (see conftest.py).
SUITE_TIMEOUT_SECONDS = 120


def run_api_suite(endpoint: str, junit_xml: Path) -> bool:
    """Run the suite against `endpoint`, writing junit XML; True when every test passed.

    A separate pytest process keeps the suite's imports, plugins and exit out of the job's process.
    """
    command = [
        sys.executable, "-m", "pytest", str(SUITE_DIR),
        f"--endpoint={endpoint}", f"--junitxml={junit_xml}",
        "-o", "junit_suite_name=api", "-p", "no:cacheprovider", "-q", "-rfE",
    ]  # fmt: skip
    return subprocess.run(command, timeout=SUITE_TIMEOUT_SECONDS, check=False).returncode == 0
