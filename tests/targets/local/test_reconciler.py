"""How the reconciler reads Git's desired state and judges a live process against it (no processes)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import yaml

from pipeline.gitops.render import RenderError, render_text
from pipeline.targets.local import layout
from pipeline.targets.local import reconciler as reconciler_module
from pipeline.targets.local.desired import DesiredStateError, desired_state
from pipeline.targets.local.target import OVERLAY

MODEL_DIR = Path("/models/iris")


def deployment_manifest(container: dict, replicas: int = 2) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "ml-inference"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}},
        }
    )


def container(**changes: object) -> dict:
    base = {
        "name": "ml-inference",
        "command": ["python", "-m", "ml_inference"],
        "args": ["serve"],
        "env": [
            {"name": "ML_INFERENCE_PORT", "value": "8080"},
            {"name": "ML_INFERENCE_LOG_LEVEL", "value": "info"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
    }
    return base | changes


@pytest.fixture(scope="module")
def git():
    """The repo's own local overlay, rendered as Argo CD would."""
    return desired_state(render_text(OVERLAY), model_dir=MODEL_DIR, shared_port=41000)


def test_the_local_overlay_maps_onto_replica_processes(git) -> None:
    assert git.replicas == 3
    assert git.argv == (sys.executable, "-m", "ml_inference", "serve")
    assert git.env["ML_INFERENCE_MAX_BATCH"] == "1000"
    assert git.env["ML_INFERENCE_HOST"] == "127.0.0.1"  # loopback, whatever the cluster binds
    assert git.env["ML_INFERENCE_MODEL_DIR"] == str(MODEL_DIR)
    assert git.env["ML_INFERENCE_SHARED_PORT"] == "41000"
    assert "ML_INFERENCE_PORT" not in git.env  # each replica's own, like a pod IP
    probe_paths = {git.startup.path, git.readiness.path, git.liveness.path}
    assert probe_paths == {"/v2/health/live", "/ready", "/health"}
    assert git.readiness.window_seconds == 10  # periodSeconds 5 x failureThreshold 2
    assert git.grace_seconds == 30


def test_a_process_running_gits_config_has_no_differences(git) -> None:
    environ = git.env | {"ML_INFERENCE_PORT": "5555", "PATH": "/usr/bin", "PIPELINE_LOCAL_REPLICA": "x"}
    assert git.differences(list(git.argv), environ) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ML_INFERENCE_MAX_BATCH": "10"}, "ML_INFERENCE_MAX_BATCH=10, Git says 1000"),
        ({"ML_INFERENCE_DEBUG_EXTRA": "1"}, "ML_INFERENCE_DEBUG_EXTRA=1, Git says <unset>"),
    ],
)
def test_a_setting_that_differs_from_git_is_named(git, change: dict, expected: str) -> None:
    assert git.differences(list(git.argv), git.env | change) == [expected]


def test_a_variable_git_no_longer_sets_is_drift_whatever_its_name(git) -> None:
    """A Deployment once set PYTHONOPTIMIZE=1 and a commit removed it: the live replicas still have it."""
    environ = git.env | {"PYTHONOPTIMIZE": "1", "TZ": "UTC", "PIPELINE_LOCAL_ENVIRONMENT": "demo-1a2b"}
    assert git.differences(list(git.argv), environ) == ["PYTHONOPTIMIZE=1, Git says <unset>"]


def test_a_removed_setting_and_a_changed_command_are_named(git) -> None:
    environ = {k: v for k, v in git.env.items() if k != "ML_INFERENCE_LOG_LEVEL"}
    found = git.differences([sys.executable, "-m", "ml_inference", "serve", "--port", "1"], environ)
    assert len(found) == 2
    assert found[0].startswith("command ")
    assert found[1] == "ML_INFERENCE_LOG_LEVEL=<unset>, Git says info"


def test_a_config_change_in_git_changes_the_template_hash() -> None:
    one = desired_state(deployment_manifest(container()), model_dir=MODEL_DIR, shared_port=1)
    other = desired_state(
        deployment_manifest(container(env=[{"name": "ML_INFERENCE_LOG_LEVEL", "value": "debug"}])),
        model_dir=MODEL_DIR,
        shared_port=1,
    )
    scaled = desired_state(deployment_manifest(container(), replicas=5), model_dir=MODEL_DIR, shared_port=1)
    assert one.template_hash != other.template_hash
    assert one.template_hash == scaled.template_hash  # scaling is not a new template
    assert one.revision != scaled.revision


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            deployment_manifest(container(env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {}}}])),
            "valueFrom",
        ),
        (deployment_manifest(container(command=["/bin/server"], args=[])), "only `python ...` commands"),
        (deployment_manifest(container(name="sidecar")), "no container named 'ml-inference'"),
        (
            deployment_manifest(container(readinessProbe={"exec": {"command": ["true"]}})),
            "is not an httpGet probe",
        ),
        ("kind: ConfigMap\nmetadata: {name: x}\n", "no Deployment named 'ml-inference'"),
    ],
)
def test_what_cannot_run_locally_is_refused_clearly(manifest: str, message: str) -> None:
    with pytest.raises(DesiredStateError, match=re.escape(message)):
        desired_state(manifest, model_dir=MODEL_DIR, shared_port=1)


def test_a_broken_overlay_is_reported_with_kustomizes_message(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(RenderError, match=r"missing\.yaml"):
        render_text(tmp_path)


def test_a_transient_render_failure_is_retried_with_backoff_without_a_file_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.targets.local import reconciler as module

    clock = [1000.0]
    calls = []

    def flaky_render(overlay: Path) -> str:
        calls.append(clock[0])
        if len(calls) == 1:
            raise RenderError("kubectl kustomize timed out")
        return render_text(overlay)

    monkeypatch.setattr(module, "render_text", flaky_render)
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    controller = object.__new__(module.Reconciler)  # only the desired-state part, no sockets or signals
    controller.state_dir = tmp_path
    controller.state = {"overlay": str(OVERLAY), "model_dir": str(MODEL_DIR), "endpoint_port": 41000}
    controller.desired, controller.desired_error, controller.gitops_fingerprint = None, None, None
    controller.render_failures, controller.render_retry_at = 0, 0.0
    controller.event = lambda *args, **kwargs: None

    controller.refresh_desired()
    assert controller.desired is None and "timed out" in controller.desired_error
    controller.refresh_desired()  # at once: no retry storm
    assert len(calls) == 1
    clock[0] += 60  # no file under gitops/ changed, only time passed
    controller.refresh_desired()
    assert len(calls) == 2
    assert controller.desired_error is None and controller.desired is not None


def test_a_misconfigured_replica_that_serves_is_stopped_only_once_gits_replicas_are_ready() -> None:
    """Like a Deployment with maxUnavailable 0: a config drift is healed without losing capacity."""
    from pipeline.targets.local import reconciler as module

    controller = object.__new__(module.Reconciler)  # only the converging part, no sockets or signals
    controller.replicas, controller.next_start_at = {}, 0.0
    started, stopped = [], []
    controller.start = lambda desired, *, reason: started.append(reason) or f"started ({reason})"
    controller.stop = lambda replica, *, reason: stopped.append(replica.name) or f"stopped {replica.name}"
    desired = SimpleNamespace(replicas=2, grace_seconds=30.0)

    def replica(name: str, *, ready: bool, drifted: bool) -> module.Replica:
        differences = ["ML_INFERENCE_LOG_LEVEL differs"] if drifted else []
        process = psutil.Process(os.getpid())  # never signalled: start and stop are recorded instead
        return module.Replica(name, process, 0, 0.0, "", ready=ready, differences=differences)

    old = [replica("old-1", ready=True, drifted=True), replica("old-2", ready=True, drifted=True)]
    controller.converge(desired, old, now=1.0)
    assert (started, stopped) == (["missing", "missing"], []), "the drifted replicas serve until others can"

    started.clear()
    starting = [replica("new-1", ready=True, drifted=False), replica("new-2", ready=False, drifted=False)]
    controller.converge(desired, old + starting, now=2.0)
    assert (started, stopped) == ([], []), "one of Git's replicas is not ready yet"

    starting[1].ready = True
    controller.converge(desired, old + starting, now=3.0)
    assert stopped == ["old-1", "old-2"]

    stopped.clear()
    controller.converge(
        desired,
        [replica("new-1", ready=True, drifted=False), replica("odd", ready=False, drifted=True)],
        now=4.0,
    )
    assert stopped == ["odd"], "a drifted replica that does not serve is stopped at once"


def test_a_secret_variable_that_differs_from_git_is_named_without_its_value(git) -> None:
    """The differences go to status.json, events.jsonl and history.jsonl: kept, and shared to debug."""
    token, password = "ghp_" + "a1B2" * 9, "Xk9,vT2;pq7"
    environ = git.env | {"GITHUB_TOKEN": token, "DB_PASSWORD": password, "API_HEADER": f"Bearer {token}"}
    found = " ".join(git.differences(list(git.argv), environ))
    assert "GITHUB_TOKEN" in found and "DB_PASSWORD" in found and "API_HEADER" in found
    assert token not in found and "vT2" not in found


def test_the_reconcilers_event_log_is_masked(tmp_path: Path) -> None:
    reconciler = object.__new__(reconciler_module.Reconciler)
    reconciler.state_dir = tmp_path
    reconciler.event("replica-differs", reasons=["by-hand-1: AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG"])
    assert "wJalrXUtnFEMI" not in (tmp_path / layout.EVENTS).read_text()


def test_a_revision_whose_replicas_crash_loop_is_degraded_while_the_old_ones_still_serve(git) -> None:
    """maxUnavailable 0 keeps the old replicas ready; what Git asks for is what must be ready."""
    reconciler = object.__new__(reconciler_module.Reconciler)
    reconciler.crash_failures = reconciler_module.CRASH_LOOP_FAILURES
    reconciler.state = {"heal": True}
    old_config = ["ML_INFERENCE_MAX_BATCH=1000, Git says abc"]
    old = [
        reconciler_module.Replica(
            name=f"old-{index}", process=None, port=0, started_monotonic=0.0, started_at="",
            started=True, ready=True, ever_ready=True, differences=old_config,
        )
        for index in range(git.replicas)
    ]  # fmt: skip
    assert reconciler.assess(git, old) == "Degraded"
