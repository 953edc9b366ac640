"""cluster-state/status.json on kind/minikube: the contract's shape, from the Application and the pods.

The real kubernetes client reads from a stand-in API server on 127.0.0.1 (no cluster runs here),
which also answers Prometheus' /api/v1/targets as the shared Prometheus would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from pipeline.targets.kube.environment import KubeEnvironment
from pipeline.targets.kube.plan import StepFailed
from tests.helpers import QuietHandler, kube_api_server, written_as_records_write_times

APPLICATION_PATH = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/ml-inference-deploy"
PODS_PATH = "/api/v1/namespaces/ml-inference-deploy/pods"
CONTRACT_KEYS = {
    "target", "environment", "endpoint", "sync", "health", "replicas", "prometheus", "observed_at",
}  # fmt: skip
APPLICATION = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Application",
    "metadata": {"name": "ml-inference-deploy", "namespace": "argocd"},
    "status": {
        "sync": {"status": "Synced", "revision": "c0ffee" + "0" * 34},
        "health": {"status": "Healthy"},
    },
}


def _pod(name: str, ip: str, ready: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ml-inference-deploy"},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": str(ready)}],
            "containerStatuses": [
                {"name": "ml-inference", "ready": ready, "restartCount": 1, "image": "i", "imageID": ""}
            ],
        },
    }


PODS = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
    _pod("ml-inference-a", "10.244.0.7", True),
    _pod("ml-inference-b", "10.244.0.8", False),
]}  # fmt: skip
TARGETS = {"status": "success", "data": {"activeTargets": [
    {"labels": {"namespace": "ml-inference-deploy", "pod": "ml-inference-a"},
     "scrapeUrl": "http://10.244.0.7:8080/metrics", "health": "up", "lastScrape": "2026-11-27T07:00:00Z",
     "lastError": ""},
    {"labels": {"namespace": "ml-inference-test", "pod": "ml-inference-x"},
     "scrapeUrl": "http://10.244.1.9:8080/metrics", "health": "up", "lastScrape": "2026-11-27T07:00:00Z",
     "lastError": ""},
]}}  # fmt: skip


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The stand-in API server (and Prometheus); yields the paths it was asked for."""
    pytest.importorskip("kubernetes", reason="the kubernetes client comes with deploy's requirements")
    asked: list[str] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            path = urlparse(self.path).path
            body = {APPLICATION_PATH: APPLICATION, PODS_PATH: PODS, "/api/v1/targets": TARGETS}.get(path)
            self.answer(200 if body else 404, json.dumps(body or {"kind": "Status", "code": 404}))

    with kube_api_server(Handler, tmp_path, monkeypatch):
        yield asked


def _environment(prometheus_url: str | None = None) -> KubeEnvironment:
    return KubeEnvironment(
        name="deploy",
        namespace="ml-inference-deploy",
        application="ml-inference-deploy",
        kubectl=("kubectl", "--context", "kind-ml-gitops"),
        context="kind-ml-gitops",
        desired=[],
        target="kind",
        endpoint="http://127.0.0.1:40123",
        prometheus_url=prometheus_url,
    )


def _api_url() -> str:
    import kubernetes.config

    return kubernetes.config.new_client_from_config(context="kind-ml-gitops").configuration.host


def test_save_state_writes_the_contract_status(
    server: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = _environment(prometheus_url=_api_url())
    monkeypatch.setattr(environment, "_kubectl_json", lambda *args: (_ for _ in ()).throw(StepFailed("no")))
    environment.save_state(tmp_path / "cluster-state")
    status = json.loads((tmp_path / "cluster-state" / "status.json").read_text())
    assert set(status) >= CONTRACT_KEYS
    assert (status["target"], status["environment"], status["endpoint"]) == (
        "kind",
        "deploy",
        "http://127.0.0.1:40123",
    )
    assert (status["sync"], status["health"]) == ("Synced", "Healthy")
    assert status["revision"] == APPLICATION["status"]["sync"]["revision"]
    assert [{k: r[k] for k in ("name", "url", "ready")} for r in status["replicas"]] == [
        {"name": "ml-inference-a", "url": "http://10.244.0.7:8080", "ready": True},
        {"name": "ml-inference-b", "url": "http://10.244.0.8:8080", "ready": False},
    ]
    assert status["prometheus"]["url"] == environment.prometheus_url
    assert [t["pod"] for t in status["prometheus"]["targets"]] == ["ml-inference-a"], "only its namespace"
    assert status["errors"] == []
    assert written_as_records_write_times(status["observed_at"]), status["observed_at"]
    assert any(unquote(path).endswith("labelSelector=app.kubernetes.io/name=ml-inference") for path in server)


def test_an_unreachable_cluster_still_leaves_a_status_naming_why(tmp_path: Path) -> None:
    pytest.importorskip("kubernetes", reason="the kubernetes client comes with deploy's requirements")
    kubeconfig = tmp_path / "missing-kubeconfig"
    import kubernetes.config.kube_config

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        status = _environment().status_summary()
    assert (status["sync"], status["health"], status["replicas"]) == ("OutOfSync", "Missing", [])
    assert status["prometheus"] is None
    assert len(status["errors"]) == 2 and "Application argocd/ml-inference-deploy" in status["errors"][0]
    assert written_as_records_write_times(status["observed_at"]), status["observed_at"]


def test_the_prometheus_selector_is_the_environments_namespace() -> None:
    """Test and demo share the cluster's Prometheus; the namespace label tells their series apart."""
    assert _environment().prometheus_selector == {"namespace": "ml-inference-deploy"}
