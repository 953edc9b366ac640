"""The job graph: declared once, well formed, the pipeline's shape, and one nox session per job."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.graph import JOBS, JOBS_BY_NAME, Job, check_graph, dependents

REPO = Path(__file__).resolve().parents[2]


def test_graph_has_the_pipeline_shape_and_timeouts() -> None:
    assert [job.name for job in JOBS] == ["unit", "build", "deploy", "scan", "test", "demo", "report"]
    assert set(JOBS_BY_NAME["deploy"].needs) == {"build", "unit"}
    assert JOBS_BY_NAME["test"].needs == JOBS_BY_NAME["demo"].needs == ("deploy",)
    assert JOBS_BY_NAME["scan"].needs == JOBS_BY_NAME["deploy"].needs  # beside deploy: the same stage
    assert set(JOBS_BY_NAME["report"].needs) == {job.name for job in JOBS} - {"report"}
    assert JOBS_BY_NAME["report"].condition == "always"
    assert JOBS_BY_NAME["demo"].runs_in("full") and not JOBS_BY_NAME["demo"].runs_in("quick")
    timeouts = {job.name: job.timeout_minutes for job in JOBS}
    assert timeouts == {
        "unit": 10,
        "build": 10,
        "deploy": 15,
        "scan": 10,
        "test": 10,
        "demo": 10,
        "report": 5,
    }
    artifacts = {job.name: job.artifact for job in JOBS}
    assert artifacts["deploy"] == "cluster-state" and artifacts["test"] == "test-results"
    assert artifacts["demo"] == "demo-artifacts" and artifacts["report"] == "final-demo-report"


def test_only_build_and_report_get_more_than_read_access() -> None:
    granted = {job.name: [grant for grant, _ in job.permissions] for job in JOBS if job.permissions}
    assert granted == {"build": ["packages: write"], "report": ["actions: read", "pull-requests: write"]}


def test_every_job_is_a_nox_session_of_the_same_name() -> None:
    sessions = [job.session for job in JOBS]
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--json", "-s", *sessions],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert [entry["session"] for entry in json.loads(listed.stdout)] == sessions


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ((Job("a", needs=("b",)), Job("b", needs=("a",))), "cycle"),
        ((Job("a", needs=("ghost",)),), "job 'a' needs unknown job(s) ghost"),
        ((Job("a"), Job("a")), "repeated: a"),
    ],
)
def test_bad_graphs_are_refused_naming_the_job(jobs: tuple[Job, ...], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_graph(jobs)


def test_dependents_are_transitive() -> None:
    assert dependents(JOBS, {"build"}) == {"build", "deploy", "scan", "test", "demo", "report"}
    assert dependents(JOBS, {"test"}) == {"test", "report"}
    assert dependents(JOBS, set()) == set()
