"""What a first real run on kind/minikube would hit (issue 13), each checked offline.

The plan a dry run prints, the manifests, the workflow's time budgets and the wait's messages
against a stand-in API server: no cluster runs here.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest
import yaml

import pipeline.targets.kube.target as kube
from pipeline.artifacts import write_outputs
from pipeline.context import RunContext
from pipeline.gitops import appofapps, source, versions
from pipeline.gitops.checks import argocd_rules
from pipeline.gitops.source import GitSource
from pipeline.graph import JOBS_BY_NAME
from pipeline.jobs._environment import release_from_build
from pipeline.targets.kube import wait
from pipeline.targets.kube.plan import Query
from pipeline.workflow import WORKFLOW_PATH, render
from tests.helpers import REPO, QuietHandler, kube_api_server, require_program

TAG = "ghcr.io/example/ml-inference:3f2a1c9d"
DIGEST = "sha256:" + "ab" * 32
SOURCE = GitSource("https://github.com/example/ml-gitops-pipeline.git", "c0ffee" + "0" * 34)


@pytest.fixture
def pushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A build that pushed to GHCR (tag and registry digest), and `origin` as the Git source."""
    require_program("kubectl")
    context = RunContext("kind", "full", tmp_path, "t", dry_run=True, keep=False)
    write_outputs("build", {"image_tag": TAG, "image_digest": DIGEST, "image_status": "pushed"}, context)
    monkeypatch.setattr(kube, "origin_source", lambda dry_run: (SOURCE, []))
    monkeypatch.setenv("PIPELINE_GIT_SOURCE", "origin")
    return tmp_path


def _plan(tool: str, env_name: str, artifacts: Path) -> str:
    context = RunContext(tool, "full", artifacts, "t", dry_run=True, keep=False)
    return kube.make_target(tool).plan(env_name, release_from_build(context), context)


# 1. The image the cluster runs is the one that was loaded, never pulled.


@pytest.mark.parametrize("tool", ["kind", "minikube"])
def test_the_loaded_tag_runs_and_is_never_pulled(tool: str, pushed: Path) -> None:
    plan = _plan(tool, "deploy", pushed)
    assert DIGEST not in plan, "a docker save/load round trip loses the registry digest"
    assert f"- ml-inference={TAG}" in plan
    assert "imagePullPolicy" in plan and "value: Never" in plan
    assert (
        f"image: {TAG} (loaded with `{'kind load docker-image' if tool == 'kind' else 'minikube image load'}`"
        in plan
    )
    assert "imagePullPolicy Never" in plan


def test_the_desired_state_records_the_pull_policy(pushed: Path) -> None:
    plan = kube.plan_environment("kind", "deploy", release_from_build(
        RunContext("kind", "full", pushed, "t", dry_run=True, keep=False)), planning=True)  # fmt: skip
    (deployment,) = [m for m in plan.environment.desired if m["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (TAG, "Never")
    assert plan.environment.image == {
        "reference": TAG,
        "source": "kind load docker-image",
        "pull_policy": "Never",
    }


# 2. CI serves the checked-out commit from inside the cluster; a blocked wait names why.


def test_github_actions_defaults_to_the_in_cluster_git_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_GIT_SOURCE", raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert source.git_source_mode() == "in-cluster"
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    assert source.git_source_mode() == "origin"
    monkeypatch.setenv("PIPELINE_GIT_SOURCE", "origin")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert source.git_source_mode() == "origin", "an explicit setting wins"


ROOT_ERROR = "Failed to load target state: authentication required: Repository not found."


def test_a_child_that_never_appears_names_the_roots_conditions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("kubernetes", reason="the kubernetes client comes with the deploy requirements")
    root = {
        "metadata": {"name": "ml-gitops", "namespace": "argocd"},
        "status": {
            "sync": {"status": "Unknown"},
            "health": {"status": "Healthy"},
            "conditions": [{"type": "ComparisonError", "message": ROOT_ERROR}],
        },
    }

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            path = unquote(self.path)
            if "watch=true" in path:
                self.answer(200, b"")  # the child never appears: the watch ends with no event
            elif path.endswith("/applications/ml-gitops"):
                self.answer(200, json.dumps(root))
            else:
                self.answer(404, b"")

    with (
        kube_api_server(Handler, tmp_path, monkeypatch),
        pytest.raises(wait.ApplicationBlocked) as raised,
    ):
        wait.wait_for_application(
            "kind-ml-gitops", "ml-inference-deploy", revision=SOURCE.revision, timeout_seconds=2
        )
    message = str(raised.value)
    assert "ml-inference-deploy" in message and "Missing" in message
    assert f"ml-gitops: ComparisonError: {ROOT_ERROR}" in message


# 3. Budgets that fit a cold cluster; fail fast on what will not fix itself; no teardown waits in CI.


def _event(sync: str, health: str, conditions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "sync": {"status": sync, "revision": SOURCE.revision},
        "health": {"status": health},
    }
    if conditions:
        status["conditions"] = conditions
    return {"type": "MODIFIED", "object": {"status": status}}


def test_a_comparison_error_fails_at_once() -> None:
    error = _event("Unknown", "Healthy", [{"type": "ComparisonError", "message": ROOT_ERROR}])
    with pytest.raises(wait.ApplicationBlocked, match=r"ComparisonError.*Repository not found"):
        wait.watch_until_converged(
            lambda t: iter([error]), "x", revision=SOURCE.revision, timeout_seconds=600
        )


@pytest.mark.parametrize(
    "reason", ["ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "CrashLoopBackOff"]
)
def test_pods_that_will_not_recover_fail_at_once(reason: str) -> None:
    progressing = _event("Synced", "Progressing")
    with pytest.raises(wait.ApplicationBlocked, match=reason):
        wait.watch_until_converged(
            lambda t: iter([progressing]),
            "x",
            revision=SOURCE.revision,
            timeout_seconds=600,
            stuck=lambda: f"pod ml-inference-1: {reason}: back-off",
        )


def test_degraded_for_longer_than_the_bound_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 10_000, 20))
    monkeypatch.setattr("pipeline.targets.kube.wait.time.monotonic", lambda: next(clock))
    degraded = _event("Synced", "Degraded")
    with pytest.raises(wait.ApplicationBlocked, match="Degraded for"):
        wait.watch_until_converged(
            lambda t: iter([degraded] * 20), "x", revision=SOURCE.revision, timeout_seconds=600
        )


#: A cold cluster on a fresh runner: node image, Argo CD, metrics-server, Prometheus and Grafana
#: pulls and rollouts. A job's budget (pipeline/graph.py) covers this plus two Application waits.
COLD_CLUSTER_SECONDS = 600


def test_kube_jobs_have_budgets_per_target_that_fit_a_cold_cluster() -> None:
    for name in ("deploy", "test", "demo"):
        job = JOBS_BY_NAME[name]
        cold = job.timeout_for("kind") * 60
        assert cold >= COLD_CLUSTER_SECONDS + 2 * kube.SYNC_TIMEOUT_SECONDS, name
        assert job.timeout_for("kind") == job.timeout_for("minikube")
        assert job.timeout_for("local") < job.timeout_for("kind")
    assert JOBS_BY_NAME["unit"].timeout_for("kind") == JOBS_BY_NAME["unit"].timeout_for("local")


def test_the_workflow_picks_the_budget_by_the_runs_target() -> None:
    workflow = yaml.safe_load(render())
    target = workflow["env"]["PIPELINE_TARGET"].removeprefix("${{ ").removesuffix(" }}")
    for name in ("deploy", "test", "demo"):
        job = JOBS_BY_NAME[name]
        expression = workflow["jobs"][name]["timeout-minutes"]
        assert expression == (
            f"${{{{ ({target}) == 'local' && {math.ceil(job.timeout_for('local'))} "
            f"|| {math.ceil(job.timeout_for('kind'))} }}}}"
        )
    assert workflow["jobs"]["unit"]["timeout-minutes"] == math.ceil(JOBS_BY_NAME["unit"].timeout_minutes)
    assert WORKFLOW_PATH.read_text() == render(), "regenerate: python -m pipeline.workflow"


def test_teardown_on_an_ephemeral_runner_waits_for_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.targets.kube import environment as kube_environment

    ran: list[str] = []
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setattr(
        kube_environment, "execute", lambda steps, dry_run: ran.extend(step.render() for step in steps)
    )
    env = kube_environment.KubeEnvironment(
        name="deploy", namespace="ml-inference-deploy", application="ml-inference-deploy",
        kubectl=("kubectl",), context="kind-ml-gitops", desired=[], target="kind",
    )  # fmt: skip
    env.down()
    assert ran == [], "the runner is thrown away with its cluster: no teardown, no waits"


def test_a_failed_bring_up_saves_the_scrubbed_state(pushed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[Path] = []
    monkeypatch.setattr(
        kube, "execute", lambda steps, dry_run: (_ for _ in ()).throw(wait.ApplicationBlocked("stuck"))
    )
    monkeypatch.setattr(kube.KubeEnvironment, "save_state", lambda self, directory: saved.append(directory))
    context = RunContext("kind", "full", pushed, "t", dry_run=False, keep=False)
    with pytest.raises(wait.ApplicationBlocked):
        kube.make_target("kind").up("deploy", release_from_build(context), context)
    assert saved == [pushed / "cluster-state" / "failed-bring-up"]


# 4. Load through a NodePort and kind's extraPortMappings, on 127.0.0.1, on a port free at creation.


def test_kind_maps_each_environments_node_port_to_loopback(pushed: Path) -> None:
    plan = _plan("kind", "test", pushed)
    block = plan.split("$ kind create cluster", 1)[1].split("\n\n", 1)[0]
    config = yaml.safe_load(block.split("\n", 1)[1])
    mappings = config["nodes"][0]["extraPortMappings"]
    assert {m["containerPort"] for m in mappings} == set(kube.NODE_PORTS.values())
    assert all(m["listenAddress"] == "127.0.0.1" and 1024 < m["hostPort"] < 65536 for m in mappings)
    assert "kind create cluster --name ml-gitops" in plan and "--config -" in plan
    assert "/spec/ports/0/nodePort" in plan and f"value: {kube.NODE_PORTS['test']}" in plan
    assert "value: NodePort" in plan
    assert re.search(rf"load path: http://127\.0\.0\.1:\d+ \(NodePort {kube.NODE_PORTS['test']}", plan)
    assert "port-forward --address 127.0.0.1 -n ml-inference-test service/ml-inference" not in plan


@pytest.mark.parametrize("env_name", sorted(kube.NODE_PORTS))
def test_the_network_policy_admits_the_node_port_load(env_name: str) -> None:
    """kind (v0.24+) and minikube's kindnet enforce NetworkPolicy: traffic through a NodePort comes
    from outside the pod network, which a policy of pod and namespace peers alone drops."""
    require_program("kubectl")
    root = appofapps.root_application(
        SOURCE, f"ml-inference={TAG}", kube.workload_patches(), kube.node_port_patches()
    )
    children = appofapps.render_children(root, [appofapps.environment_component(env_name)])
    (child,) = [c for c in appofapps.applications(children) if c["metadata"]["name"].endswith(env_name)]
    deployed = appofapps.render_application(child)
    (service,) = [m for m in deployed if m["kind"] == "Service"]
    (policy,) = [m for m in deployed if m["kind"] == "NetworkPolicy"]
    assert service["spec"]["type"] == "NodePort"
    target_port = service["spec"]["ports"][0]["targetPort"]
    admitted = [
        rule
        for rule in policy["spec"]["ingress"]
        if any("ipBlock" in peer for peer in rule.get("from", []))
        and any(port.get("port") == target_port for port in rule.get("ports", []))
    ]
    assert admitted, f"{env_name}: nothing from outside the cluster may reach port {target_port}"


def test_minikube_loads_through_its_service_url(pushed: Path) -> None:
    plan = _plan("minikube", "test", pushed)
    assert "minikube service ml-inference -n ml-inference-test --url --profile ml-gitops" in plan


# 5. The drift demo: a self-heal backoff the demo fits in, read by a restarted controller; a watch.


def test_the_self_heal_backoff_is_set_and_the_controller_reads_it(pushed: Path) -> None:
    plan = _plan("kind", "demo", pushed)
    assert "name: argocd-cmd-params-cm" in plan
    for key, value in kube.SELF_HEAL_BACKOFF.items():
        assert f"{key}: '{value}'" in plan or f'{key}: "{value}"' in plan, key
    lines = plan.splitlines()
    install = next(i for i, line in enumerate(lines) if versions.ARGOCD_INSTALL_URL in line)
    params = next(i for i, line in enumerate(lines) if "name: argocd-cmd-params-cm" in line)
    restart = next(i for i, line in enumerate(lines) if "statefulset argocd-application-controller" in line
                   and "patch" in line)  # fmt: skip
    assert params < install < restart
    assert "self-heal backoff:" in plan


def test_drift_is_detected_from_the_watch_not_from_polling() -> None:
    from pipeline.targets.kube.environment import StatusWatch

    blip = [_event("Synced", "Healthy"), _event("OutOfSync", "Healthy"), _event("Synced", "Healthy")]
    watch = StatusWatch(lambda timeout: iter(blip))
    watch.start()
    seen = [watch.status() for _ in range(3)]
    watch.stop()
    assert [s.sync for s in seen] == ["Synced", "OutOfSync", "Synced"], "a sub-second blip is not missed"


# 6. HPA health, the pinned Argo CD, laptops.


def test_an_hpa_without_metrics_yet_is_progressing() -> None:
    health = appofapps.application_health()["data"]
    script = health["resource.customizations.health.autoscaling_HorizontalPodAutoscaler"]
    assert "FailedGetResourceMetric" in script and "Progressing" in script and "Degraded" in script


def test_argo_cd_is_pinned_to_a_seen_release() -> None:
    assert versions.ARGOCD_VERSION == "v3.5.1"


#: What a 2-core laptop's kind node offers, and what the cluster itself requests before this
#: project's pods (control plane ~650m, CoreDNS 2x100m, kindnet 100m, metrics-server 100m;
#: Argo CD's install requests none). docs/kubernetes.md states the minimum.
LAPTOP_CPU = 2.0
CLUSTER_OVERHEAD_CPU = 1.05


def _quantity(value: str) -> float:
    """CPU in cores, memory in MiB (the suffixes the manifests here use)."""
    for suffix, factor in (("m", 1 / 1000), ("Mi", 1.0), ("Gi", 1024.0)):
        if value.endswith(suffix):
            return float(value.removesuffix(suffix)) * factor
    return float(value)


def _requests_of_test_demo_and_observability() -> tuple[float, float]:
    """CPU (cores) and memory (MiB) requested by test + demo + observability + the git server.

    Each Deployment at its replicas, or its HPA's minReplicas when the HPA owns them.
    """
    from pipeline.gitops.render import REPO_ROOT
    from pipeline.gitops.render import render as kustomize
    from pipeline.targets.kube.git_server import git_server_objects

    require_program("kubectl")
    manifests = [
        *kustomize(REPO_ROOT / "gitops/overlays/kubernetes"),  # the test environment's overlay
        *kustomize(REPO_ROOT / "gitops/overlays/demo"),
        *kustomize(REPO_ROOT / "observability"),
        *git_server_objects("ml-inference:t"),
    ]
    cpu = memory = 0.0
    for manifest in manifests:
        if manifest["kind"] != "Deployment":
            continue
        replicas = manifest["spec"].get("replicas")
        if replicas is None:
            (hpa,) = [
                m
                for m in manifests
                if m["kind"] == "HorizontalPodAutoscaler"
                and m["spec"]["scaleTargetRef"]["name"] == manifest["metadata"]["name"]
            ]
            replicas = hpa["spec"].get("minReplicas", 1)
        for container in manifest["spec"]["template"]["spec"]["containers"]:
            cpu += replicas * _quantity(container["resources"]["requests"]["cpu"])
            memory += replicas * _quantity(container["resources"]["requests"]["memory"])
    return cpu, memory


def test_test_and_demo_fit_a_two_core_laptop() -> None:
    cpu, _memory = _requests_of_test_demo_and_observability()
    assert cpu + CLUSTER_OVERHEAD_CPU <= LAPTOP_CPU


def test_the_docs_state_the_laptop_minimum_the_manifests_request() -> None:
    cpu, memory = _requests_of_test_demo_and_observability()
    docs = (REPO / "docs" / "kubernetes.md").read_text()
    stated = f"request {round(cpu * 1000)}m CPU and {round(memory)} MiB of memory"
    assert stated in docs
    overhead = f"{round(CLUSTER_OVERHEAD_CPU * 1000)}m CPU"
    assert overhead in docs


def test_the_docs_have_a_first_run_checklist_and_a_row_per_failure_state() -> None:
    docs = (REPO / "docs" / "kubernetes.md").read_text()
    assert "\n## First run\n" in docs
    troubleshooting = docs.split("\n## Troubleshooting\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in troubleshooting.splitlines() if line.startswith("| ")]
    states = [
        *wait.FATAL_CONDITIONS,
        *wait.STUCK_REASONS,
        "Degraded for",
        "blocked by",
        "timed out after",
    ]
    for state in states:
        assert any(state in row for row in rows), f"no troubleshooting row for {state}"


# Issue 10: least privilege for the child AppProject.


def test_the_child_project_may_not_create_cluster_rbac() -> None:
    _bootstrap, project = appofapps.projects(SOURCE)
    kinds = {(k.get("group", ""), k["kind"]) for k in project["spec"]["clusterResourceWhitelist"]}
    assert kinds == {("", "Namespace")}
    for kind in ("ClusterRole", "ClusterRoleBinding", "*"):
        wider = json.loads(json.dumps(project))
        wider["spec"]["clusterResourceWhitelist"].append({"group": "rbac.authorization.k8s.io", "kind": kind})
        assert any(
            "cluster-scoped RBAC" in p or "wildcards" in p for p in argocd_rules.check_project(wider, [])
        )


def test_prometheus_rbac_is_the_bootstraps_by_name_and_read_only() -> None:
    require_program("kubectl")
    bootstrap, _ = appofapps.projects(SOURCE)
    named = {(k["kind"], k.get("name")) for k in bootstrap["spec"]["clusterResourceWhitelist"]}
    assert named == {
        ("ClusterRole", "ml-inference-prometheus"),
        ("ClusterRoleBinding", "ml-inference-prometheus"),
    }
    children = appofapps.render_children(appofapps.root_application(SOURCE, None), [])
    assert argocd_rules.check_project(bootstrap, children) == []
    rbac = [c for c in children if c["kind"] == "ClusterRoleBinding"]
    assert rbac and rbac[0]["roleRef"]["name"] == "ml-inference-prometheus"
    admin = json.loads(json.dumps(children))
    for c in admin:
        if c["kind"] == "ClusterRoleBinding":
            c["roleRef"]["name"] = "cluster-admin"
    assert any("cluster-admin" in p for p in argocd_rules.check_project(bootstrap, admin))


@pytest.mark.parametrize("kind", ["ClusterRole", "ClusterRoleBinding"])
def test_a_project_whitelisting_cluster_rbac_of_any_name_fails(kind: str) -> None:
    bootstrap, _ = appofapps.projects(SOURCE)
    for entry in bootstrap["spec"]["clusterResourceWhitelist"]:
        if entry["kind"] == kind:
            del entry["name"]
    assert any(f"{kind} of any name" in p for p in argocd_rules.check_project(bootstrap, []))


@pytest.mark.parametrize("role", ["admin", "edit"])
def test_a_binding_to_a_built_in_admin_role_fails(role: str) -> None:
    bootstrap, _ = appofapps.projects(SOURCE)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "ml-inference-prometheus"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
    }
    assert argocd_rules.check_project(bootstrap, [binding]) == [
        "AppProject/ml-gitops-bootstrap: ClusterRoleBinding/ml-inference-prometheus binds the built-in "
        f"{role!r} ClusterRole; bind a read-only role of this repository's instead"
    ]


# Issue 10: a Git remote with a credential in it reaches neither the cluster nor the plan.


def _fake_git(remote: str, commit: str) -> Any:
    """Stands in for `source.git`: a checkout whose pushed HEAD is `commit` and whose origin is `remote`."""
    answers = {
        ("rev-parse", "HEAD"): commit,
        ("remote",): "origin",
        ("remote", "get-url", "origin"): remote,
        ("status", "--porcelain"): "",
        ("branch", "-r", "--contains", commit): "  origin/main",
    }
    return lambda *args, env=None: answers[args]


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("https://x-access-token:ghs_canary0123456789@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://ghp_canary0123456789@github.com/o/r", "https://github.com/o/r"),
        ("http://user:pa%40ss@git.example:8443/o/r.git", "http://git.example:8443/o/r.git"),
        ("git@github.com:o/r.git", "https://github.com/o/r.git"),
        ("ssh://git@github.com/o/r.git", "https://github.com/o/r.git"),
    ],
)
def test_the_origin_source_drops_the_remotes_credentials(
    remote: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "git", _fake_git(remote, SOURCE.revision))
    git_source, notes = source.origin_source(dry_run=False)
    assert git_source == GitSource(url, SOURCE.revision)
    assert notes == []


def test_a_credential_in_origin_reaches_neither_the_project_nor_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_program("kubectl")
    token = "ghs_canary0123456789"
    context = RunContext("kind", "full", tmp_path, "t", dry_run=True, keep=False)
    write_outputs("build", {"image_tag": TAG, "image_digest": DIGEST, "image_status": "pushed"}, context)
    monkeypatch.setattr(source, "git", _fake_git(f"https://u:{token}@github.com/o/r.git", SOURCE.revision))
    monkeypatch.setenv("PIPELINE_GIT_SOURCE", "origin")
    plan = _plan("kind", "test", tmp_path)
    assert token not in plan
    assert "u:" + token not in plan
    assert "- https://github.com/o/r.git" in plan  # the projects' sourceRepos
    assert "repoURL: https://github.com/o/r.git" in plan  # the root and its children


def test_a_cluster_role_that_does_more_than_read_fails() -> None:
    bootstrap, _ = appofapps.projects(SOURCE)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "ml-inference-prometheus"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    }
    assert argocd_rules.check_project(bootstrap, [role]) == []
    role["rules"].append({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]})
    assert any("may only get, list, watch" in p for p in argocd_rules.check_project(bootstrap, [role]))


# The kind dry run prints, before any step, what a real run would follow.


def _summary(plan: str) -> list[str]:
    """The plan's opening block: the lines before its first step."""
    return plan.split("\n\n", 1)[0].splitlines()


def test_the_dry_run_opens_with_the_image_the_git_source_the_load_path_and_the_backoff(
    pushed: Path,
) -> None:
    summary = _summary(_plan("kind", "demo", pushed))
    assert summary[0] == "# what a real run follows (kind, demo):"
    image, git, load, backoff = summary[1:5]
    assert image.startswith(f"image: {TAG} (loaded with `kind load docker-image`, imagePullPolicy Never")
    assert git == f"git source: {SOURCE.repo_url} at {SOURCE.revision} (origin)"
    assert re.fullmatch(rf"load path: http://127\.0\.0\.1:\d+ \(NodePort {kube.NODE_PORTS['demo']} .*", load)
    assert backoff.startswith(
        "self-heal backoff: " + ", ".join(f"{k}={v}" for k, v in kube.SELF_HEAL_BACKOFF.items())
    )


def test_on_an_existing_kind_cluster_the_load_path_is_read_back_not_made_up(
    pushed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its ports were picked when it was created (test and demo always find deploy's cluster):
    # a port picked now points nowhere.
    monkeypatch.setattr(Query, "holds", lambda self: True)
    load = _summary(_plan("kind", "demo", pushed))[3]
    node_port = kube.NODE_PORTS["demo"]
    assert load.startswith(f"load path: the URL `docker port ml-gitops-control-plane {node_port}/tcp` prints")
    assert "http://" not in load


@pytest.mark.parametrize("env_name", sorted(kube.NODE_PORTS))
def test_only_the_demos_plan_lists_the_drifts_made_by_hand(pushed: Path, env_name: str) -> None:
    # deploy and test never edit their live resources; a plan saying so would misinform.
    plan = _plan("kind", env_name, pushed)
    assert ("drift: delete the Service by hand" in plan) == (env_name == "demo")


def test_the_dry_run_names_the_commit_the_in_cluster_git_server_serves(
    pushed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.targets.kube.git_server as git_server

    snapshot = "5a" * 20
    monkeypatch.setenv("PIPELINE_GIT_SOURCE", "in-cluster")
    monkeypatch.setattr(git_server, "snapshot_commit", lambda: snapshot)
    summary = _summary(_plan("kind", "test", pushed))
    (git,) = [line for line in summary if line.startswith("git source:")]
    assert git == (
        f"git source: in-cluster git server serving {snapshot} at {git_server.GIT_SERVER_URL} "
        "(a snapshot of this working tree; no credential reaches the cluster)"
    )


# Issue 11: a failed bring-up keeps each container's last log lines, scrubbed.


def test_the_failed_state_keeps_each_containers_last_log_lines_scrubbed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("kubernetes")
    from pipeline.targets.kube import environment

    token = "ghp_" + "c" * 36
    namespace, pod = "ml-inference-test", "ml-inference-7d4b9-x2x"
    status = {"name": "ml-inference", "image": "i", "imageID": "", "ready": False, "restartCount": 3}
    pods = {
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": pod, "namespace": namespace},
                "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "ml-inference"}]},
                "status": {"containerStatuses": [status]},
            }
        ],
    }
    asked: list[dict[str, list[str]]] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == f"/api/v1/namespaces/{namespace}/pods":
                self.answer(200, json.dumps(pods))
            elif path == f"/api/v1/namespaces/{namespace}/pods/{pod}/log":
                asked.append(parse_qs(query))
                container = parse_qs(query)["container"][0]
                previous = parse_qs(query).get("previous") == ["true"]
                if container == "init":
                    self.answer(400, json.dumps({"kind": "Status", "message": "waiting to start"}))
                else:
                    which = "previous" if previous else "current"
                    self.answer(
                        200, f"{which} start\nmodel failed to load\nGITHUB_TOKEN={token}\n", "text/plain"
                    )
            else:
                self.answer(404, "{}")

    with kube_api_server(Handler, tmp_path, monkeypatch):
        environment.save_container_logs("kind-ml-gitops", namespace, tmp_path / "state")

    logs = tmp_path / "state" / "logs" / pod
    current = (logs / "ml-inference.log").read_text()
    assert current.startswith("current start\nmodel failed to load\n")
    assert "previous start" in (logs / "ml-inference.previous.log").read_text()  # it restarted
    assert "waiting to start" in (logs / "init.log").read_text()
    assert token not in current and "GITHUB_TOKEN=***" in current
    assert all(query["tailLines"] == [str(environment.LOG_TAIL_LINES)] for query in asked)
    assert len(asked) == 3


def test_save_state_saves_the_container_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.targets.kube import environment
    from pipeline.targets.kube.plan import StepFailed

    saved: list[tuple[str, str, Path]] = []
    monkeypatch.setattr(environment, "save_container_logs", lambda *args: saved.append(args))
    monkeypatch.setattr(environment.KubeEnvironment, "status_summary", lambda self: {})
    monkeypatch.setattr(environment, "encode", lambda model, data: data)  # no cluster: no status
    monkeypatch.setattr(
        environment.KubeEnvironment,
        "_kubectl_json",
        lambda self, *args: (_ for _ in ()).throw(StepFailed("x")),
    )
    monkeypatch.setattr(environment.KubeEnvironment, "_application", lambda self: {})
    env = environment.KubeEnvironment(
        name="test",
        namespace="ml-inference-test",
        application="ml-inference-test",
        kubectl=("kubectl",),
        context="kind-ml-gitops",
        desired=[],
        target="kind",
    )
    env.save_state(tmp_path)
    assert saved == [("kind-ml-gitops", "ml-inference-test", tmp_path)]
