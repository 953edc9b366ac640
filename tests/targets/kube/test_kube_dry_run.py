"""`--dry-run` on kind/minikube: each job prints the kube target's whole plan, in order, and exits 0.

The job modules run as the pipeline runs them (`python -m pipeline.jobs.<job>` with the PIPELINE_*
variables), and once through the real Runner; no cluster is touched (none can run here).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pipeline.artifacts import write_outputs
from pipeline.context import RunContext
from pipeline.graph import Job
from pipeline.runner import Runner, RunOptions
from tests.helpers import require_program, run_job

REPO_ROOT = Path(__file__).resolve().parents[3]
IMAGE = "ml-inference:3f2a1c9d"
CREATE = {
    "kind": "$ kind create cluster --name ml-gitops",
    "minikube": "$ minikube start --profile ml-gitops",
}
LOAD = {
    "kind": f"$ kind load docker-image {IMAGE} --name ml-gitops",
    "minikube": f"$ minikube image load {IMAGE} --profile ml-gitops",
}
DRIFTS = (
    "scale -n ml-inference-demo deployment/ml-inference",
    "set env -n ml-inference-demo",
    "delete service",
)


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """An artifacts folder holding a build's outputs, as the build job leaves them."""
    require_program("kubectl")
    context = RunContext("kind", "full", tmp_path, "dry-run", dry_run=True, keep=False)
    write_outputs("build", {"image_tag": IMAGE, "image_digest": "", "image_status": "built"}, context)
    return tmp_path


def _job_environment(tool: str, artifacts: Path) -> dict[str, str]:
    environment = os.environ | {
        "PIPELINE_TARGET": tool,
        "PIPELINE_DRY_RUN": "1",
        "PIPELINE_ARTIFACTS_DIR": str(artifacts),
        "PIPELINE_RUN_ID": "dry-run",
    }
    environment.pop("PIPELINE_GIT_SOURCE", None)
    return environment


def assert_plan_in_order(plan: str, tool: str, env_name: str) -> None:
    milestones = [
        CREATE[tool],
        LOAD[tool],
        "/manifests/install.yaml",
        "# the root Application (app of apps)",
        "kind: Application\nmetadata:\n  name: ml-gitops\n",
        f"add environments/{env_name} to Application argocd/ml-gitops",
        f"watch Application argocd/ml-inference-{env_name} ",
    ]
    if env_name == "demo":
        milestones += DRIFTS
    positions = []
    for milestone in milestones:
        assert milestone in plan, f"the {tool} plan for {env_name} lacks {milestone!r}"
        positions.append(plan.index(milestone, positions[-1] if positions else 0))
    assert positions == sorted(positions)
    assert f"dry run: the plan above was printed, nothing was run ({tool}, {env_name})" in plan


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["kind", "minikube"])
@pytest.mark.parametrize("job", ["deploy", "test", "demo"])
def test_each_job_prints_the_whole_plan(tool: str, job: str, artifacts: Path) -> None:
    result = run_job(job, _job_environment(tool, artifacts), timeout=120)
    assert result.returncode == 0, result.stderr
    assert_plan_in_order(result.stdout, tool, job)
    assert f"{job} (dry run)" in result.stdout, "the job still says what it would do after bringing it up"


@pytest.mark.slow
def test_the_runner_dry_run_logs_the_plan(artifacts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Runner, with each job started as `python -m pipeline.jobs.<job>` instead of through nox
    (nox would build a virtualenv per session; the job module and its variables are the same); a dry
    run ends without the teardown, which on kind/minikube deletes the cluster."""
    monkeypatch.delenv("PIPELINE_GIT_SOURCE", raising=False)
    options = RunOptions(target="kind", dry_run=True, only=("deploy",), artifacts_dir=artifacts)

    def job_module(job: Job) -> list[str]:
        return [sys.executable, "-m", f"pipeline.jobs.{job.name}"]

    torn_down: list[str] = []
    record = Runner(
        options, command=job_module, cwd=REPO_ROOT, teardown=lambda: torn_down.append("kind")
    ).run()
    assert torn_down == [], "a dry run must not delete the user's cluster (`invoke down`'s teardown)"
    assert record["jobs"]["deploy"]["status"] == "success", (artifacts / "logs" / "deploy.log").read_text()
    assert record["jobs"]["deploy"]["exit_code"] == 0
    assert_plan_in_order((artifacts / "logs" / "deploy.log").read_text(), "kind", "deploy")
