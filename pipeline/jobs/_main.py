"""How a job module runs as a program: `python -m pipeline.jobs.<job>`, what its nox session runs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn


def exit_with(job: str, main: Callable[[], int]) -> NoReturn:
    """Exit with `main()`'s code. Stopped part-way (Ctrl-C, the runner's SIGINT), the job has saved
    what it had on its way out: one line and 130, as a shell reports SIGINT, not a traceback."""
    try:
        code = main()
    except KeyboardInterrupt:
        print(f"{job}: stopped", file=sys.stderr, flush=True)
        code = 130
    sys.exit(code)
