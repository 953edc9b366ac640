"""`python held_loading.py serve ...`: the real service, its model load held until a file exists.

Tests start it to look at a replica that is up but still loading, for as long as they need, the
way test_bad_input.py's `blocked_loading` fixture does in-process.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ml_inference import __main__ as cli
from ml_inference import app

RELEASE_FILE = "ML_INFERENCE_TEST_RELEASE_LOAD"
_load = app.IrisModel


def _held_load(model_dir: Path) -> app.IrisModel:
    release = Path(os.environ[RELEASE_FILE])
    while not release.exists():  # runs in the loading thread: the server answers meanwhile
        time.sleep(0.02)
    return _load(model_dir)


if __name__ == "__main__":
    app.IrisModel = _held_load  # type: ignore[assignment,misc]
    sys.exit(cli.main(sys.argv[1:]))
