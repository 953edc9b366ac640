"""Waiting on an Application follows its watch events to Synced + Healthy at the right commit.

The event stream stands in for the Kubernetes API's watch (no cluster runs here); the state
machine that reads it is the real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.release import ControllerStatus
from pipeline.targets.kube.environment import application_status
from pipeline.targets.kube.wait import watch_until_converged
from tests.helpers import kube_api_server

COMMIT = "c0ffee" + "0" * 34


def _event(sync: str, health: str, revision: str = COMMIT) -> dict[str, Any]:
    return {"type": "MODIFIED", "object": {"status": {"sync": {"status": sync, "revision": revision},
                                                      "health": {"status": health}}}}  # fmt: skip


def test_waits_through_progressing_to_converged(capsys: pytest.CaptureFixture[str]) -> None:
    batches = iter([
        [_event("OutOfSync", "Missing"), _event("Synced", "Progressing")],  # the server ends this watch
        [_event("Synced", "Healthy", revision="0ld" + "0" * 37), _event("Synced", "Healthy")],
    ])  # fmt: skip
    opened: list[int] = []

    def events(timeout: int) -> Iterator[dict[str, Any]]:
        opened.append(timeout)
        return iter(next(batches))

    status = watch_until_converged(events, "ml-inference-demo", revision=COMMIT, timeout_seconds=60)
    assert status == ControllerStatus("Synced", "Healthy")
    assert len(opened) == 2
    assert "ml-inference-demo: Synced, Progressing" in capsys.readouterr().out


def test_times_out_naming_the_last_state(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 10_000, 30))  # every look at the clock is 30 s later
    monkeypatch.setattr("pipeline.targets.kube.wait.time.monotonic", lambda: next(clock))
    degraded = _event("Synced", "Degraded")
    degraded["object"]["status"]["conditions"] = [{"message": "Deployment exceeded its progress deadline"}]
    with pytest.raises(TimeoutError, match=r"Degraded.*progress deadline"):
        watch_until_converged(lambda timeout: iter([degraded]), "x", revision=COMMIT, timeout_seconds=100)


def test_status_of_a_missing_application() -> None:
    assert application_status(None) == ControllerStatus("OutOfSync", "Missing")
    assert not application_status({"status": {}}).converged


def test_watches_the_application_through_the_kubernetes_api(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real kubernetes client against a stand-in API server on 127.0.0.1 (no cluster runs here)."""
    pytest.importorskip("kubernetes", reason="the kubernetes client comes with the deploy requirements")
    import http.server
    import json

    from pipeline.targets.kube.wait import wait_for_application

    requests: list[str] = []

    class WatchHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body = "".join(
                json.dumps(e) + "\n" for e in (_event("OutOfSync", "Missing"), _event("Synced", "Healthy"))
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    with kube_api_server(WatchHandler, tmp_path, monkeypatch):
        status = wait_for_application(
            "kind-ml-gitops", "ml-inference-demo", revision=COMMIT, timeout_seconds=30
        )
    assert status == ControllerStatus("Synced", "Healthy")
    (path,) = requests
    assert path.startswith("/apis/argoproj.io/v1alpha1/namespaces/argocd/applications?")
    assert "fieldSelector=metadata.name%3Dml-inference-demo" in path and "watch=true" in path
