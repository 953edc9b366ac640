"""The local reconciler, except that its first port choices are one another program already holds.

Run as the reconciler module (`python -m tests.targets.local.reconciler_with_taken_ports STATE_DIR`)
by a test that listens on the port named in TAKEN_PORT_VARIABLE: the race where a port is free when chosen and
taken before the replica binds it, made certain rather than rare.
"""

from __future__ import annotations

import os

from pipeline.ports import free_port
from pipeline.targets.local import reconciler

TAKEN_PORT_VARIABLE = "PIPELINE_TEST_TAKEN_PORT"
#: How many port choices get the taken port: one more than a crash loop needs.
TAKEN_CHOICES = reconciler.CRASH_LOOP_FAILURES + 1


def main() -> None:
    taken = int(os.environ[TAKEN_PORT_VARIABLE])
    choices = iter([taken] * TAKEN_CHOICES)
    reconciler.free_port = lambda: next(choices, None) or free_port()  # type: ignore[assignment]
    reconciler.main()


if __name__ == "__main__":
    main()
