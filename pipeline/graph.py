"""The pipeline's job graph, declared once.

Everything else is derived from `JOBS`: the nox sessions, the local parallel runner and the
GitHub Actions workflow (a test proves the workflow file agrees with this table).
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Condition = Literal["success", "always"]


@dataclass(frozen=True)
class Job:
    """One pipeline job: a nox session of the same name plus how the graph treats it."""

    name: str
    needs: tuple[str, ...] = ()
    #: A float so tests can use a few seconds; the workflow rounds it up to whole minutes.
    timeout_minutes: float = 10
    artifact: str | None = None
    #: "success": runs only when every need succeeded; "always": runs whatever happened before.
    condition: Condition = "success"
    #: Demo modes in which the job runs at all (None: every mode).
    demo_modes: tuple[str, ...] | None = None
    #: GitHub token permissions beyond `contents: read`, each with the reason it is needed.
    permissions: tuple[tuple[str, str], ...] = ()
    #: Brings up an environment on the run's target (the workflow installs kind/minikube for it).
    uses_target: bool = False
    #: Inspects the build's image on every target (the workflow hands the image to its runner).
    uses_image: bool = False
    #: Days GitHub keeps the job's artifact: results a week or two, the report longest.
    retention_days: int = 14
    #: The budget on kind/minikube (None: timeout_minutes): a cold cluster (~10 min of pulls and
    #: rollouts) plus two Application waits of up to 10 min each (pipeline/targets/kube).
    kube_timeout_minutes: float | None = None

    def timeout_for(self, target: str) -> float:
        """This job's budget on `target`."""
        if target in ("kind", "minikube") and self.kube_timeout_minutes is not None:
            return self.kube_timeout_minutes
        return self.timeout_minutes

    @property
    def session(self) -> str:
        return self.name

    def runs_in(self, demo_mode: str) -> bool:
        return self.demo_modes is None or demo_mode in self.demo_modes


def check_graph(jobs: tuple[Job, ...]) -> None:
    """Fail with a message naming the job when a need is unknown, a name repeats or needs form a cycle."""
    names = [job.name for job in jobs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"job names must be unique; repeated: {', '.join(duplicates)}")
    for job in jobs:
        unknown = [need for need in job.needs if need not in names]
        if unknown:
            raise ValueError(f"job {job.name!r} needs unknown job(s) {', '.join(unknown)}")
    try:
        graphlib.TopologicalSorter({job.name: job.needs for job in jobs}).prepare()
    except graphlib.CycleError as error:
        raise ValueError(f"jobs form a cycle: {' -> '.join(error.args[1])}") from None


def dependents(jobs: tuple[Job, ...], names: Iterable[str]) -> set[str]:
    """`names` plus every job that needs one of them, directly or not (what a re-run must redo)."""
    found = set(names)
    return found | {job.name for job in jobs if found.intersection(upstream(jobs, job.name))}


def upstream(jobs: tuple[Job, ...], name: str) -> tuple[str, ...]:
    """Every job `name` needs, directly or not, in graph order: whose folders it may read."""
    by_name = {job.name: job for job in jobs}
    found: set[str] = set()
    pending = list(by_name[name].needs)
    while pending:
        need = pending.pop()
        if need not in found:
            found.add(need)
            pending.extend(by_name[need].needs)
    return tuple(job.name for job in jobs if job.name in found)


#: Days GitHub keeps each job's log and the build's saved image (both only matter while a run is looked at).
LOG_RETENTION_DAYS = 5
IMAGE_RETENTION_DAYS = 1

#: The jobs that do the work. Adding a job is one line here plus its nox session (see README).
WORK: tuple[Job, ...] = (
    Job("unit", timeout_minutes=10, artifact="unit-results"),
    Job(
        "build",
        timeout_minutes=10,
        artifact="build-output",
        permissions=(("packages: write", "push the verified image to GHCR (pipeline/build/registry.py)"),),
    ),
    Job(
        "deploy",
        needs=("build", "unit"),
        timeout_minutes=15,
        kube_timeout_minutes=35,
        artifact="cluster-state",
        uses_target=True,
    ),
    # Beside deploy, in the same stage: the release is scanned while it deploys. A finding at or above
    # pipeline/scan/policy.toml's thresholds fails the pipeline.
    Job("scan", needs=("build", "unit"), timeout_minutes=10, artifact="security-scan", uses_image=True),
    Job(
        "test",
        needs=("deploy",),
        timeout_minutes=10,
        kube_timeout_minutes=40,
        artifact="test-results",
        uses_target=True,
    ),
    Job(
        "demo",
        needs=("deploy",),
        timeout_minutes=10,
        kube_timeout_minutes=40,
        artifact="demo-artifacts",
        demo_modes=("full",),
        uses_target=True,
    ),
)


def with_report(work: tuple[Job, ...]) -> tuple[Job, ...]:
    """`work` plus the report, which needs every one of them and runs always, so it sees every outcome."""
    report = Job(
        "report",
        needs=tuple(job.name for job in work),
        timeout_minutes=5,
        artifact="final-demo-report",
        condition="always",
        retention_days=30,
        permissions=(
            ("actions: read", "job timings for pipeline-run.json, the previous run's load figures"),
            ("pull-requests: write", "the report comment on the pull request"),
        ),
    )
    return (*work, report)


JOBS: tuple[Job, ...] = with_report(WORK)
check_graph(JOBS)

JOBS_BY_NAME: dict[str, Job] = {job.name: job for job in JOBS}
