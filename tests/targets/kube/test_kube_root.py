"""Environments join and leave the root Application without losing another job's change.

The real kubernetes client talks to a stand-in API server on 127.0.0.1 (no cluster runs here)
that keeps one Application and, like the real one, refuses (409 Conflict) a replace carrying a
stale resourceVersion. Another job joining between our read and our write must survive.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.targets.kube import environment as kube_environment
from pipeline.targets.kube.environment import KubeEnvironment
from tests.helpers import QuietHandler, kube_api_server

ROOT_PATH = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/ml-gitops"


class FakeApplications:
    """The API server's view of the root: one object, a resourceVersion bumped on every write."""

    def __init__(self, components: list[str]) -> None:
        self.root: dict[str, Any] = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "ml-gitops", "namespace": "argocd", "resourceVersion": "1"},
            "spec": {"source": {"path": "gitops/argocd/apps", "kustomize": {"components": components}}},
        }
        self.puts: list[dict[str, Any]] = []
        self.races: list[str] = []  # components another job adds just before our next write lands

    def write(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.puts.append(body)
        if self.races:
            self._store(self.races.pop(0))
        if body["metadata"].get("resourceVersion") != self.root["metadata"]["resourceVersion"]:
            return 409, {"kind": "Status", "status": "Failure", "reason": "Conflict", "code": 409}
        self.root = copy.deepcopy(body)
        self.root["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
        return 200, self.root

    def _store(self, component: str) -> None:
        components = self.root["spec"]["source"]["kustomize"]["components"]
        components.append(component)
        version = self.root["metadata"]["resourceVersion"]
        self.root["metadata"]["resourceVersion"] = str(int(version) + 1)


@pytest.fixture
def api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApplications]:
    pytest.importorskip("kubernetes", reason="the kubernetes client comes with the manifests requirements")

    state = FakeApplications([])

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            assert self.path == ROOT_PATH
            self.answer(200, json.dumps(state.root))

        def do_PUT(self) -> None:
            assert self.path == ROOT_PATH
            code, body = state.write(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.answer(code, json.dumps(body))

    with kube_api_server(Handler, tmp_path, monkeypatch):
        yield state


def test_join_survives_another_job_joining_at_the_same_moment(api_server: FakeApplications) -> None:
    from pipeline.targets.kube.api import custom_objects
    from pipeline.targets.kube.root import set_component

    api_server.races.append("environments/test")  # the test job joins between our read and write
    after = set_component(custom_objects("kind-ml-gitops"), "environments/demo", present=True)
    assert after == ["environments/demo", "environments/test"]
    assert api_server.root["spec"]["source"]["kustomize"]["components"] == after
    first, second = api_server.puts
    assert first["metadata"]["resourceVersion"] == "1"  # refused: stale
    assert second["metadata"]["resourceVersion"] == "2"  # re-read, then accepted


def test_join_twice_changes_nothing_and_leave_keeps_the_others(api_server: FakeApplications) -> None:
    from pipeline.targets.kube.api import custom_objects
    from pipeline.targets.kube.root import set_component

    api = custom_objects("kind-ml-gitops")
    set_component(api, "environments/test", present=True)
    set_component(api, "environments/demo", present=True)
    writes = len(api_server.puts)
    assert set_component(api, "environments/demo", present=True) == ["environments/demo", "environments/test"]
    assert len(api_server.puts) == writes
    assert set_component(api, "environments/test", present=False) == ["environments/demo"]
    assert api_server.root["spec"]["source"]["kustomize"]["components"] == ["environments/demo"]


def test_a_root_that_keeps_changing_fails_naming_it(api_server: FakeApplications) -> None:
    from pipeline.targets.kube.api import custom_objects
    from pipeline.targets.kube.root import ATTEMPTS, set_component

    api_server.races.extend(f"environments/other-{n}" for n in range(ATTEMPTS))
    with pytest.raises(RuntimeError, match="argocd/ml-gitops kept changing; environments/demo not added"):
        set_component(custom_objects("kind-ml-gitops"), "environments/demo", present=True)


def test_down_leaves_the_root_then_waits_for_the_prune(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting the child directly would not last (the root's self-heal recreates it)."""
    ran: list[str] = []
    monkeypatch.setattr(kube_environment, "custom_objects", lambda context: f"api:{context}")
    monkeypatch.setattr(
        kube_environment,
        "set_component",
        lambda api, component, present: ran.append(f"{api} {component} present={present}") or [],
    )
    monkeypatch.setattr(
        "pipeline.targets.kube.plan.run_process",
        lambda argv, stdin, timeout: (
            ran.append(" ".join(argv)) or subprocess.CompletedProcess(argv, 0, "", "")
        ),
    )
    kubectl = ("kubectl", "--context", "kind-ml-gitops")
    KubeEnvironment(
        "deploy", "ml-inference-deploy", "ml-inference-deploy", kubectl, "kind-ml-gitops", [], "kind"
    ).down()
    assert ran == [
        "api:kind-ml-gitops environments/deploy present=False",
        "kubectl --context kind-ml-gitops wait --for=delete applications.argoproj.io/ml-inference-deploy "
        "-n argocd --timeout=300s",
        "kubectl --context kind-ml-gitops delete namespace ml-inference-deploy --ignore-not-found "
        "--wait=true --timeout=180s",
    ]
    assert not any(" delete applications" in line for line in ran)
