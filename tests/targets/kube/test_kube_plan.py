"""The kind/minikube plan: complete, in order, pinned, and the very thing that is executed.

No cluster runs here, so these tests check the plan a dry run prints (PIPELINE_DRY_RUN=1) against
the official install steps of the pinned versions, and prove that a real run executes exactly
the printed commands, in the printed order (the commands are intercepted, not run).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pipeline.targets.kube.target as kube
from pipeline.artifacts import write_outputs
from pipeline.context import RunContext
from pipeline.gitops import appofapps, versions
from pipeline.gitops.source import GitSource, https_url
from pipeline.jobs._environment import release_from_build
from pipeline.targets import get_target
from pipeline.targets.kube.cluster import Cluster
from pipeline.targets.kube.plan import Command, Query, StepFailed
from tests.helpers import require_program

REPO_ROOT = Path(__file__).resolve().parents[3]
IMAGE = "ml-inference:3f2a1c9d"
SOURCE = GitSource("https://github.com/example/ml-gitops-pipeline.git", "c0ffee" + "0" * 34)


def _context(tmp_path: Path, *, dry_run: bool) -> RunContext:
    return RunContext(
        target="kind", demo_mode="full", artifacts_dir=tmp_path, run_id="t", dry_run=dry_run, keep=False
    )


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A build job's outputs, and `origin` standing in for a pushed repository."""
    require_program("kubectl")
    write_outputs(
        "build",
        {"image_tag": IMAGE, "image_digest": "", "image_status": "built"},
        _context(tmp_path, dry_run=True),
    )
    monkeypatch.setattr(kube, "origin_source", lambda dry_run: (SOURCE, []))
    monkeypatch.delenv("PIPELINE_GIT_SOURCE", raising=False)
    return tmp_path


def dry_run(tool: str, env_name: str, artifacts: Path) -> str:
    context = _context(artifacts, dry_run=True)
    return kube.make_target(tool).plan(env_name, release_from_build(context), context)


def commands(plan: str) -> list[str]:
    return [line[2:].split("    # skipped when")[0] for line in plan.splitlines() if line.startswith("$ ")]


def _index(lines: list[str], pattern: str) -> int:
    matches = [i for i, line in enumerate(lines) if re.search(pattern, line)]
    assert matches, f"no command matches {pattern!r}"
    return matches[0]


def _assert_common(plan: str, lines: list[str], kubectl: str) -> None:
    install = _index(lines, re.escape(versions.ARGOCD_INSTALL_URL))
    assert (
        "--server-side" in lines[install]
        and "--force-conflicts" in lines[install]
        and "-n argocd" in lines[install]
    )
    assert f"/argo-cd/{versions.ARGOCD_VERSION}/manifests/install.yaml" in versions.ARGOCD_INSTALL_URL
    order = [
        _index(lines, r"load"),
        _index(lines, r"apply .*-f -$"),  # the argocd namespace, before the install
        install,
        _index(lines, r"wait --for=condition=Established .*crd/applications.argoproj.io"),
        _index(lines, r"wait --for=condition=Available deployment --all -n argocd"),
        _index(lines, r"rollout status statefulset/argocd-application-controller"),
    ]
    assert order == sorted(order), lines
    assert all(line.startswith(kubectl) for line in lines if line.startswith("kubectl"))
    for forbidden in ("sleep", "|| true", "argocd-initial-admin-secret", ":latest", "admin"):
        assert forbidden not in plan
    # Every object applied is printed in full, before the watch that waits for it.
    for text in (
        "kind: AppProject",
        "name: ml-gitops-bootstrap",
        "resource.customizations.health.argoproj.io_Application: |",
        "name: observability",
        "- ml-inference=" + IMAGE,
        f"repoURL: {SOURCE.repo_url}",
    ):
        assert text in plan
    # Argo CD is told how Applications are healthy right after it is installed.
    assert plan.index("install.yaml") < plan.index("health.argoproj.io_Application")
    # The root is applied, then observability is waited for, then the environment joins the root.
    steps = [
        plan.index("kind: AppProject"),
        plan.index("path: gitops/argocd/apps"),
        plan.index("watch Application argocd/observability"),
        plan.index("to Application argocd/ml-gitops spec.source.kustomize.components"),
        plan.index("watch Application argocd/ml-inference-"),
    ]
    assert steps == sorted(steps)


def test_kind_plan(built: Path) -> None:
    plan = dry_run("kind", "deploy", built)
    lines = commands(plan)
    create = _index(lines, r"^kind create cluster --name ml-gitops")
    assert f"--image {versions.KIND_NODE_IMAGE}" in lines[create]
    assert "skipped when `kind get clusters` lists ml-gitops" in plan
    assert _index(lines, rf"^kind load docker-image {IMAGE} --name ml-gitops") > create
    assert _index(lines, re.escape(versions.METRICS_SERVER_URL)) > create
    _assert_common(plan, lines, "kubectl --context kind-ml-gitops")
    assert "name: ml-inference-deploy" in plan and "namespace: ml-inference-deploy" in plan
    assert "/spec/replicas" in plan and "RespectIgnoreDifferences=true" in plan  # the HPA owns replicas
    assert "add environments/deploy to Application argocd/ml-gitops" in plan
    assert "pod-security.kubernetes.io/enforce: restricted" in plan
    assert "docker port ml-gitops-control-plane 30080/tcp" in plan  # the NodePort, not a port-forward


def test_minikube_plan(built: Path) -> None:
    plan = dry_run("minikube", "deploy", built)
    lines = commands(plan)
    start = _index(lines, r"^minikube start --profile ml-gitops")
    assert f"--kubernetes-version={versions.KUBERNETES_VERSION}" in lines[start]
    assert _index(lines, r"^minikube addons enable metrics-server --profile ml-gitops") > start
    assert _index(lines, rf"^minikube image load {IMAGE} --profile ml-gitops") > start
    _assert_common(plan, lines, "kubectl --context ml-gitops")


def test_demo_plan_prints_the_drifts_in_order(built: Path) -> None:
    plan = dry_run("kind", "demo", built)
    lines = commands(plan)
    scale = _index(lines, r"scale -n ml-inference-demo deployment/ml-inference --replicas=4")
    set_env = _index(
        lines, r"set env -n ml-inference-demo deployment/ml-inference ML_INFERENCE_LOG_LEVEL=debug"
    )
    delete = _index(lines, r"delete service ml-inference -n ml-inference-demo")
    assert scale < set_env < delete
    assert "path: gitops/overlays/demo" in plan
    assert "/spec/replicas" not in plan  # Git owns replicas in the demo: a scale is drift


def test_test_environment_has_no_scale_drift(built: Path) -> None:
    plan = dry_run("kind", "test", built)
    assert " scale " not in plan
    assert "ml-inference-test" in plan


def test_real_run_executes_exactly_the_printed_plan(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    printed = commands(dry_run("kind", "demo", built))
    executed: list[str] = []
    waited: list[str] = []

    def fake_run(argv: Any, stdin: str | None, timeout_seconds: int) -> subprocess.CompletedProcess[str]:
        if tuple(argv) == ("kind", "version"):  # the pinned-release check (a Call, not a printed command)
            return subprocess.CompletedProcess(
                argv, 0, f"kind {versions.KIND_VERSION} go1.25 linux/amd64\n", ""
            )
        executed.append(" ".join(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(Query, "holds", lambda self: False)
    monkeypatch.setattr("pipeline.targets.kube.plan.run_process", fake_run)
    joined: list[tuple[str, str, bool]] = []
    pods_watched: dict[str, str | None] = {}  # each Application's namespace whose stuck pods fail it at once

    def fake_wait(context: str, name: str, **kw: Any) -> str:
        waited.append(name)
        pods_watched[name] = kw.get("namespace")
        return "ok"

    monkeypatch.setattr(kube, "wait_for_application", fake_wait)
    monkeypatch.setattr(kube, "custom_objects", lambda context: context)
    monkeypatch.setattr(
        kube,
        "set_component",
        lambda api, component, present: joined.append((api, component, present)) or [component],
    )
    monkeypatch.setattr(kube.KubeEnvironment, "connect", lambda self: None)
    context = _context(built, dry_run=False)
    environment = kube.make_target("kind").up("demo", release_from_build(context), context)
    for drift in environment.drifts():
        drift.cause()
    setup_and_drifts = [line for line in printed if "port-forward" not in line and "docker port" not in line]
    assert [re.sub(r"'", "", c) for c in executed] == [re.sub(r"'", "", c) for c in setup_and_drifts]
    assert waited == ["observability", "ml-inference-demo"]
    assert pods_watched == {"observability": "monitoring", "ml-inference-demo": "ml-inference-demo"}
    assert joined == [("kind-ml-gitops", "environments/demo", True)]
    assert [d.name for d in environment.drifts()] == ["replica-count", "config-drift", "service-deleted"]


def test_the_image_must_be_pinned(tmp_path: Path) -> None:
    context = _context(tmp_path, dry_run=False)
    write_outputs("build", {"image_tag": "ml-inference:latest"}, context)
    with pytest.raises(SystemExit, match="never :latest"):
        kube.build_image(release_from_build(context))
    write_outputs("build", {"image_tag": "", "image_status": "skipped"}, context)
    with pytest.raises(SystemExit, match="run `nox -s build`"):
        kube.build_image(release_from_build(context))
    write_outputs(
        "build", {"image_tag": "ghcr.io/o/ml-inference:1", "image_digest": "sha256:" + "b" * 64}, context
    )
    # The loaded tag, never the registry digest (lost by docker save/load; kind#2734).
    assert kube.build_image(release_from_build(context))[1] == "ml-inference=ghcr.io/o/ml-inference:1"


def test_an_image_whose_build_failed_is_never_loaded(tmp_path: Path) -> None:
    """A build that failed verification still names the content tag it would have applied."""
    context = _context(tmp_path, dry_run=False)
    write_outputs("build", {"image_tag": "ml-inference:0123456789abcdef", "image_status": "failed"}, context)
    with pytest.raises(SystemExit, match=r"the build produced no image \(failed\)"):
        kube.build_image(release_from_build(context))


def test_targets_resolve() -> None:
    assert get_target("kind").name == "kind"
    assert get_target("minikube").name == "minikube"
    with pytest.raises(SystemExit):
        kube.make_target("local")


def test_down_all_deletes_only_an_existing_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    monkeypatch.setattr(
        "pipeline.targets.kube.plan.run_process",
        lambda argv, stdin, timeout: (
            ran.append(" ".join(argv)) or subprocess.CompletedProcess(argv, 0, "", "")
        ),
    )
    monkeypatch.setattr(Query, "holds", lambda self: False)
    assert kube.make_target("kind").down_all() == []
    assert ran == []
    monkeypatch.setattr(Query, "holds", lambda self: True)
    assert kube.make_target("minikube").down_all() == ["minikube/ml-gitops"]
    assert ran == ["minikube delete --profile ml-gitops"]


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("git@github.com:acme/ml-gitops.git", "https://github.com/acme/ml-gitops.git"),
        ("ssh://git@github.com/acme/ml-gitops.git", "https://github.com/acme/ml-gitops.git"),
        ("https://github.com/acme/ml-gitops.git", "https://github.com/acme/ml-gitops.git"),
    ],
)
def test_origin_is_read_over_https(remote: str, url: str) -> None:
    assert https_url(remote) == url


def test_versions_are_pinned_in_one_place() -> None:
    pins = [
        versions.ARGOCD_VERSION,
        versions.KIND_VERSION,
        versions.MINIKUBE_VERSION,
        versions.KUBERNETES_VERSION,
        versions.METRICS_SERVER_VERSION,
        "kindest/node",
    ]
    offenders = []
    for root in ("pipeline", "gitops", "scripts"):
        for path in (REPO_ROOT / root).rglob("*"):
            if (
                path.is_file()
                and path.suffix in {".py", ".yaml", ".yml", ".sh"}
                and path.name != "versions.py"
            ):
                text = path.read_text()
                offenders += [f"{path.relative_to(REPO_ROOT)}: {pin}" for pin in pins if pin in text]
    assert offenders == []


def test_the_planned_application_is_the_one_argo_cd_renders(built: Path) -> None:
    plan = kube.plan_environment(
        "minikube", "test", release_from_build(_context(built, dry_run=True)), planning=True
    )
    children = appofapps.applications(plan.children)  # without the root's cluster RBAC
    names = [child["metadata"]["name"] for child in children]
    assert names == ["observability", "ml-inference-test"]  # wave order
    application = children[1]
    assert (
        application["spec"]["destination"]["namespace"] == plan.environment.namespace == "ml-inference-test"
    )
    assert application["spec"]["source"]["targetRevision"] == SOURCE.revision
    kustomize = application["spec"]["source"]["kustomize"]
    assert kustomize["images"] == [f"ml-inference={IMAGE}"]
    assert [p["target"]["kind"] for p in kustomize["patches"]] == ["Deployment", "Service", "NetworkPolicy"]


def test_saved_desired_state_carries_the_deployed_image(built: Path) -> None:
    plan = kube.plan_environment(
        "kind", "demo", release_from_build(_context(built, dry_run=True)), planning=True
    )
    (deployment,) = [m for m in plan.environment.desired if m["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


@pytest.mark.parametrize(
    ("tool", "output"), [("kind", "kind v0.29.0 go1.24 linux/amd64"), ("minikube", "v1.35.0")]
)
def test_an_unpinned_tool_is_refused(monkeypatch: pytest.MonkeyPatch, tool: str, output: str) -> None:
    monkeypatch.setattr(
        "pipeline.targets.kube.plan.run_process",
        lambda argv, stdin, timeout: subprocess.CompletedProcess(argv, 0, output + "\n", ""),
    )
    check = kube.Cluster(tool).check_version()
    with pytest.raises(SystemExit, match="pinned to v"):
        check.run()


def test_the_plan_prints_from_the_command_line(built: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.targets.kube", "minikube", "test"],
        cwd=REPO_ROOT,
        env={**os.environ, "PIPELINE_ARTIFACTS_DIR": str(built), "PIPELINE_DRY_RUN": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"minikube image load {IMAGE} --profile ml-gitops" in result.stdout
    assert "add environments/test to Application argocd/ml-gitops" in result.stdout
    assert "nothing was run (minikube, test)" in result.stdout


@pytest.mark.parametrize(
    ("program", "raised"),
    [("import time; time.sleep(30)", subprocess.TimeoutExpired), ("raise SystemExit(1)", StepFailed)],
    ids=["timed out", "failed"],
)
def test_a_step_stopped_or_failed_part_way_is_undone(tmp_path: Path, program: str, raised: type) -> None:
    """kind killed mid-create leaves a half-made cluster, which the next run would take for a whole one."""
    marker = tmp_path / "undone"
    undo = (sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    step = Command((sys.executable, "-c", program), "create", timeout_seconds=1, undo=undo)
    with pytest.raises(raised):
        step.run()
    assert marker.exists()


def test_creating_the_kind_cluster_is_undone_by_deleting_it() -> None:
    create = next(step for step in Cluster("kind").create() if "create" in getattr(step, "argv", ()))
    assert create.undo == Cluster("kind").delete_argv()
    assert "# if it fails or is stopped: kind delete cluster --name ml-gitops" in create.render()
