"""The pipeline's job graph, declared once.

Everything else is derived from `JOBS`: the nox sessions, the local parallel runner and the
GitHub Actions workflow (a test proves the workflow file agrees with this table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Condition = Literal["success", "always"]


@dataclass(frozen=True)
class Job:
    """One pipeline job: a nox session of the same name plus how the graph treats it."""

    name: str
    needs: tuple[str, ...] = ()
    timeout_minutes: int = 10
    artifact: str | None = None
    #: "success": runs only when every need succeeded; "always": runs whatever happened before.
    condition: Condition = "success"
    #: Demo modes in which the job runs at all (None: every mode).
    demo_modes: tuple[str, ...] | None = None

    @property
    def session(self) -> str:
        return self.name


JOBS: tuple[Job, ...] = (
    Job("unit", timeout_minutes=10, artifact="unit-results"),
    Job("build", timeout_minutes=10, artifact="build-output"),
    Job("deploy", needs=("build", "unit"), timeout_minutes=15, artifact="cluster-state"),
    Job("test", needs=("deploy",), timeout_minutes=10, artifact="test-results"),
    Job("demo", needs=("deploy",), timeout_minutes=10, artifact="demo-artifacts", demo_modes=("full",)),
    Job(
        "report",
        needs=("unit", "build", "deploy", "test", "demo"),
        timeout_minutes=5,
        artifact="final-demo-report",
        condition="always",
    ),
)

JOBS_BY_NAME: dict[str, Job] = {job.name: job for job in JOBS}
