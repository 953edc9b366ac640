"""The offline manifest checks (`python -m pipeline.gitops.checks`) pass on the repo and can fail.

Rendering, built-in and CRD schema validation, and the Argo CD rules (projects, the root of the
app of apps, its child Applications) are each shown to report a deliberately broken manifest.
The policy rules have their own file.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline import settings
from pipeline.gitops import appofapps
from pipeline.gitops.checks import argocd_rules, schemas
from pipeline.gitops.render import REPO_ROOT, RenderError, overlays, render
from tests.helpers import require_program

SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
SOURCE = appofapps.GitSource("https://github.com/example/ml-gitops-pipeline.git", "a" * 40)
IMAGE = "ml-inference=ml-inference:1"


@pytest.fixture
def offline_schemas(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CRD schema location at ../shared/schemas, as CI does."""
    if not SHARED_SCHEMAS.is_dir():
        message = f"{SHARED_SCHEMAS} is missing; CI lays shared/ beside the clone"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    monkeypatch.setenv(schemas.CRD_SCHEMA_LOCATION_ENV, str(SHARED_SCHEMAS))
    return SHARED_SCHEMAS


@pytest.fixture(scope="module")
def kubernetes_overlay() -> list[dict[str, Any]]:
    require_program("kubectl")
    return render(REPO_ROOT / "gitops/overlays/kubernetes")


def _children(*env_names: str) -> list[dict[str, Any]]:
    """What Argo CD renders from the root with these environments on."""
    require_program("kubectl")
    root = appofapps.root_application(SOURCE, IMAGE)
    return appofapps.applications(
        appofapps.render_children(root, [appofapps.environment_component(e) for e in env_names])
    )


def _application(env_name: str, rendered: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The child Application of one environment (`rendered`, its overlay, is not needed to build it)."""
    (application,) = [
        c for c in _children(env_name) if c["metadata"]["name"] == appofapps.application_name(env_name)
    ]
    return application


def test_the_repository_passes_every_check(offline_schemas: Path) -> None:
    require_program("kubectl")
    require_program("promtool")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.gitops.checks"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, schemas.CRD_SCHEMA_LOCATION_ENV: str(offline_schemas)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("render", "schemas", "policy gitops/overlays/demo", "argocd projects", "observability"):
        assert f"ok    {check}" in result.stdout


def test_every_environment_has_an_overlay() -> None:
    names = {path.name for path in overlays()}
    assert {"local", "kubernetes", "demo"} <= names
    assert appofapps.environments() == ["demo", "deploy", "test"]
    paths = {c["spec"]["source"]["path"] for c in _children(*appofapps.environments())}
    assert paths == {"observability", "gitops/overlays/kubernetes", "gitops/overlays/demo"}


def test_render_fails_on_a_broken_kustomization(tmp_path: Path) -> None:
    require_program("kubectl")
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing-deployment.yaml\n")
    with pytest.raises(RenderError, match=r"missing-deployment\.yaml"):
        render(tmp_path)


def test_builtin_schema_rejects_an_unknown_field(kubernetes_overlay: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(next(m for m in kubernetes_overlay if m["kind"] == "Deployment"))
    assert schemas.validate([deployment]) == []
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    (problem,) = schemas.validate([deployment])
    assert "Deployment/ml-inference" in problem and "livenesProbe" in problem


def test_builtin_schema_rejects_a_wrong_type(kubernetes_overlay: list[dict[str, Any]]) -> None:
    service = copy.deepcopy(next(m for m in kubernetes_overlay if m["kind"] == "Service"))
    service["spec"]["ports"][0]["port"] = "eighty"
    assert any("Service/ml-inference" in p for p in schemas.validate([service]))


def test_builtin_schema_rejects_an_api_the_pinned_version_does_not_serve() -> None:
    hpa = {"apiVersion": "autoscaling/v2beta1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"}}
    (problem,) = schemas.validate([hpa])
    assert "not served" in problem


def test_crd_schema_accepts_the_target_applications(offline_schemas: Path, kubernetes_overlay) -> None:
    objects = [*_children("test", "demo"), appofapps.root_application(SOURCE, IMAGE)]
    assert schemas.validate([*objects, *appofapps.projects(SOURCE)]) == []


def test_crd_schema_rejects_a_broken_application(offline_schemas: Path, kubernetes_overlay) -> None:
    application = _application("test", kubernetes_overlay)
    application["spec"]["syncPolicy"]["automated"]["prune"] = "yes"
    application["spec"]["source"]["pathh"] = "gitops"
    problems = schemas.validate([application])
    assert any("syncPolicy/automated/prune" in p for p in problems), problems
    assert any("pathh" in p for p in problems), problems


def test_missing_crd_schema_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(schemas.CRD_SCHEMA_LOCATION_ENV, str(tmp_path))
    (problem,) = schemas.validate(appofapps.projects(SOURCE)[:1])
    assert schemas.CRD_SCHEMA_LOCATION_ENV in problem and "appproject_v1alpha1.json" in problem


def test_schema_location_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(schemas.CRD_SCHEMA_LOCATION_ENV, raising=False)
    default = settings.get(schemas.CRD_SCHEMA_LOCATION_ENV, {})
    assert schemas.crd_schema_location() == default
    assert "datreeio/CRDs-catalog" in default
    monkeypatch.setenv(schemas.CRD_SCHEMA_LOCATION_ENV, "../shared/schemas")
    expected = REPO_ROOT / "../shared/schemas" / "{group}" / "{kind}_{version}.json"
    assert schemas.crd_schema_location() == str(expected)


def test_applications_follow_the_sync_rules(kubernetes_overlay: list[dict[str, Any]]) -> None:
    demo = render(REPO_ROOT / "gitops/overlays/demo")
    assert argocd_rules.check_application(_application("test", kubernetes_overlay), kubernetes_overlay) == []
    assert argocd_rules.check_application(_application("demo", demo), demo) == []
    demo_application = _application("demo", demo)
    assert "ignoreDifferences" not in demo_application["spec"]
    assert "RespectIgnoreDifferences=true" not in demo_application["spec"]["syncPolicy"]["syncOptions"]


APPLICATION_BREAKAGES = {
    "no self-heal": (lambda a: a["spec"]["syncPolicy"]["automated"].pop("selfHeal"), "selfHeal"),
    "no prune": (lambda a: a["spec"]["syncPolicy"]["automated"].update(prune=False), "prune"),
    "unbounded retry": (
        lambda a: a["spec"]["syncPolicy"]["retry"]["backoff"].pop("maxDuration"),
        "bound retries",
    ),
    "no namespace creation": (
        lambda a: a["spec"]["syncPolicy"]["syncOptions"].remove("CreateNamespace=true"),
        "Create",
    ),
    "no finalizer": (lambda a: a["metadata"].pop("finalizers"), "finalizer"),
    "no sync wave": (lambda a: a["metadata"].pop("annotations"), "sync-wave"),
    "namespace not restricted": (
        lambda a: a["spec"]["syncPolicy"].pop("managedNamespaceMetadata"),
        'Pod Security "restricted"',
    ),
    "namespace only warned": (
        lambda a: a["spec"]["syncPolicy"]["managedNamespaceMetadata"]["labels"].update(
            {"pod-security.kubernetes.io/enforce": "baseline"}
        ),
        "pod-security.kubernetes.io/enforce",
    ),
    "deploys into argocd": (lambda a: a["spec"]["destination"].update(namespace="argocd"), "only the root"),
    "hpa fights self-heal": (lambda a: a["spec"].pop("ignoreDifferences"), "HPA owns spec.replicas"),
    "ignored without respect": (
        lambda a: a["spec"]["syncPolicy"]["syncOptions"].remove("RespectIgnoreDifferences=true"),
        "RespectIgnoreDifferences",
    ),
}


@pytest.mark.parametrize("breakage", APPLICATION_BREAKAGES)
def test_application_check_fails(kubernetes_overlay: list[dict[str, Any]], breakage: str) -> None:
    mutate, expected = APPLICATION_BREAKAGES[breakage]
    application = _application("test", kubernetes_overlay)
    mutate(application)
    problems = argocd_rules.check_application(application, kubernetes_overlay)
    assert any(expected in p for p in problems), problems


def test_demo_application_must_not_ignore_replicas() -> None:
    require_program("kubectl")
    demo = render(REPO_ROOT / "gitops/overlays/demo")
    application = _application("demo", demo)
    application["spec"]["ignoreDifferences"] = [
        {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}
    ]
    assert any("never healed" in p for p in argocd_rules.check_application(application, demo))


def test_project_passes_and_fails(kubernetes_overlay: list[dict[str, Any]]) -> None:
    bootstrap, project = appofapps.projects(SOURCE)
    assert project["spec"]["sourceRepos"] == bootstrap["spec"]["sourceRepos"] == [SOURCE.repo_url]
    assert argocd_rules.check_project(project, kubernetes_overlay) == []
    any_repo = copy.deepcopy(project)
    any_repo["spec"]["sourceRepos"] = ["*"]
    assert any(
        "exactly this repository" in p for p in argocd_rules.check_project(any_repo, kubernetes_overlay)
    )
    any_namespace = copy.deepcopy(project)
    any_namespace["spec"]["destinations"][0]["namespace"] = "*"
    assert any("named namespaces" in p for p in argocd_rules.check_project(any_namespace, kubernetes_overlay))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}
    assert any("Secret/x" in p for p in argocd_rules.check_project(project, [*kubernetes_overlay, secret]))


def test_the_root_project_may_create_applications_and_nothing_else() -> None:
    bootstrap, project = appofapps.projects(SOURCE)
    children = _children("test")
    assert argocd_rules.check_project(bootstrap, children) == []
    assert [d["namespace"] for d in bootstrap["spec"]["destinations"]] == ["argocd"]
    assert "argocd" not in [d["namespace"] for d in project["spec"]["destinations"]]
    wider = copy.deepcopy(bootstrap)
    wider["spec"]["namespaceResourceWhitelist"].append({"group": "apps", "kind": "Deployment"})
    assert any("admin-level" in p for p in argocd_rules.check_project(wider, children))


def test_root_carries_the_run_and_its_children_read_it() -> None:
    root = appofapps.root_application(SOURCE, IMAGE)
    assert root["spec"]["source"]["repoURL"] == SOURCE.repo_url
    assert root["spec"]["source"]["targetRevision"] == SOURCE.revision
    assert "components" not in root["spec"]["source"]["kustomize"]  # joined per job, never re-applied
    children = _children("test", "demo")
    assert children[0]["metadata"]["name"] == "observability"  # wave 0 first
    for child in children:
        assert child["spec"]["source"]["repoURL"] == SOURCE.repo_url
        assert child["spec"]["source"]["targetRevision"] == SOURCE.revision
        labels = child["spec"]["syncPolicy"]["managedNamespaceMetadata"]["labels"]  # monitoring too
        assert labels == argocd_rules.RESTRICTED_NAMESPACE_LABELS
        expected = [IMAGE] if child["metadata"]["name"] != "observability" else None
        assert child["spec"]["source"].get("kustomize", {}).get("images") == expected
    assert [c["metadata"]["name"] for c in _children()] == ["observability"]
    with pytest.raises(SystemExit, match="known: demo, deploy, test"):
        appofapps.environment_component("staging")


def test_root_rules_pass_and_fail() -> None:
    root = appofapps.root_application(SOURCE, IMAGE)
    children = _children("test", "demo")
    assert argocd_rules.check_root(root, children, first="observability") == []
    late = copy.deepcopy(children)
    next(c for c in late if c["metadata"]["name"] == "observability")["metadata"]["annotations"][
        argocd_rules.SYNC_WAVE
    ] = "1"
    assert any("earlier wave" in p for p in argocd_rules.check_root(root, late, first="observability"))
    shared_project = copy.deepcopy(root)
    shared_project["spec"]["project"] = "ml-gitops"
    assert any(
        "project of its own" in p for p in argocd_rules.check_root(shared_project, children, "observability")
    )
    elsewhere = copy.deepcopy(root)
    elsewhere["spec"]["destination"]["namespace"] = "default"
    assert any("argocd namespace" in p for p in argocd_rules.check_root(elsewhere, children, "observability"))
    no_heal = copy.deepcopy(root)
    no_heal["spec"]["syncPolicy"]["automated"].pop("selfHeal")
    assert any("selfHeal" in p for p in argocd_rules.check_root(no_heal, children, "observability"))


def test_the_root_applies_its_child_applications_client_side() -> None:
    # argoproj/argo-cd#29253 (unfixed in the pinned release): a root that server-side applies its children
    # strips a child's status.operationState mid-sync; the child stays "Running" and self-heal stops.
    root = appofapps.root_application(SOURCE, IMAGE)
    assert "ServerSideApply=true" not in root["spec"]["syncPolicy"].get("syncOptions", [])
    server_side = copy.deepcopy(root)
    server_side["spec"]["syncPolicy"]["syncOptions"] = ["ServerSideApply=true"]
    problems = argocd_rules.check_root(server_side, _children("test"), first="observability")
    assert any("ServerSideApply" in problem for problem in problems), problems


def test_command_line_exits_non_zero_on_a_problem(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from pipeline.gitops.checks import __main__ as cli

    def broken_run(report):
        report("policy gitops/overlays/demo", ["Deployment/ml-inference: set runAsNonRoot: true"])
        return {"policy gitops/overlays/demo": ["Deployment/ml-inference: set runAsNonRoot: true"]}

    monkeypatch.setattr(cli, "run", broken_run)
    assert cli.main([]) == 1
    assert "FAIL  policy gitops/overlays/demo" in capsys.readouterr().out
