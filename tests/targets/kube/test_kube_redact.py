"""No secret survives the cluster-state redaction (kube/redact.py), and what is not secret does.

Secrets are planted where a real cluster keeps them (Secret data, the Argo CD initial admin
secret, kubeconfig credentials, env vars, annotations, event messages, Application conditions),
then everything that save_state writes is searched for each planted value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.scrub import MASK
from pipeline.targets.kube import environment as kube_environment
from pipeline.targets.kube.environment import KubeEnvironment
from pipeline.targets.kube.redact import redact

PLANTED = {
    "admin_password": "Zm9vYmFyYWRtaW5wYXNzd29yZA==",
    "plain_password": "hunter2-but-longer",
    "client_key": "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB",
    "bearer": "sk_live_51HYa8dJw9x",
    "jwt": "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl",
    "pem": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
    "repo_token": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
}

ADMIN_SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "argocd-initial-admin-secret", "namespace": "argocd"},
    "type": "Opaque",
    "data": {"password": PLANTED["admin_password"]},
}
KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "kind-ml-gitops", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [
        {
            "name": "kind-ml-gitops",
            "user": {
                "client-key-data": PLANTED["client_key"],
                "token": PLANTED["jwt"],
                "password": PLANTED["plain_password"],
            },
        }
    ],
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "ml-inference",
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"token": PLANTED["jwt"]})
        },
    },
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "ml-inference",
                        "image": "ml-inference:0.1.0",
                        "env": [
                            {"name": "ML_INFERENCE_LOG_LEVEL", "value": "info"},
                            {"name": "DB_PASSWORD", "value": PLANTED["plain_password"]},
                            {
                                "name": "GIT_CREDENTIALS",
                                "valueFrom": {"secretKeyRef": {"name": "git", "key": "pat"}},
                            },
                        ],
                    }
                ]
            }
        },
    },
}
EVENT = {
    "kind": "Event",
    "reason": "SyncError",
    "message": (
        f"authentication failed: Authorization: Bearer {PLANTED['bearer']} rejected; "
        f"password={PLANTED['repo_token']}"
    ),
}
APPLICATION = {
    "kind": "Application",
    "metadata": {"name": "ml-inference-demo"},
    "status": {
        "sync": {"status": "Synced"},
        "health": {"status": "Healthy"},
        "conditions": [{"type": "ComparisonError", "message": f"ssh key {PLANTED['pem']} invalid"}],
    },
}


def _assert_clean(text: str) -> None:
    for name, value in PLANTED.items():
        assert value not in text, f"planted {name} leaked"
        assert value.splitlines()[1 if "\n" in value else 0] not in text, f"part of planted {name} leaked"


@pytest.mark.parametrize(
    "planted", [ADMIN_SECRET, KUBECONFIG, DEPLOYMENT, EVENT, APPLICATION], ids=lambda o: o["kind"]
)
def test_no_planted_secret_survives(planted: dict[str, Any]) -> None:
    _assert_clean(json.dumps(redact(planted)))


def test_what_is_not_secret_is_kept() -> None:
    deployment = redact(DEPLOYMENT)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == "ml-inference:0.1.0"
    assert container["env"][0] == {"name": "ML_INFERENCE_LOG_LEVEL", "value": "info"}
    assert container["env"][1] == {"name": "DB_PASSWORD", "value": MASK}
    assert container["env"][2]["valueFrom"]["secretKeyRef"] == {"name": "git", "key": "pat"}
    secret = redact(ADMIN_SECRET)
    assert secret["metadata"]["name"] == "argocd-initial-admin-secret"
    assert secret["data"] == {"password": MASK}
    assert redact(APPLICATION)["status"]["health"] == {"status": "Healthy"}


def test_save_state_writes_nothing_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole save_state path, with a cluster that answers with planted secrets everywhere."""
    environment = KubeEnvironment(
        name="demo",
        namespace="ml-inference-demo",
        application="ml-inference-demo",
        kubectl=("kubectl", "--context", "kind-ml-gitops"),
        context="kind-ml-gitops",
        desired=[DEPLOYMENT, ADMIN_SECRET],
        target="kind",
    )
    answers = {
        "applications.argoproj.io": APPLICATION,
        "events": {"items": [EVENT, {"kind": "Event", "message": json.dumps(KUBECONFIG)}]},
        "pods": {"items": [{"metadata": {"name": "p"}, "spec": {"containers": [DEPLOYMENT]}, "status": {}}]},
    }

    def fake_kubectl_json(*args: str) -> Any:
        kind = args[1]
        return answers.get(kind, {"items": [DEPLOYMENT, ADMIN_SECRET, KUBECONFIG]})

    monkeypatch.setattr(environment, "_kubectl_json", fake_kubectl_json)
    # The containers' logs are read through the client; test_kube_first_run checks they are masked.
    monkeypatch.setattr(kube_environment, "save_container_logs", lambda *args: None)
    environment.save_state(tmp_path)
    written = {path.name: path.read_text() for path in tmp_path.iterdir()}
    assert set(written) == {
        "status.json",
        "manifests.yaml",
        "application.json",
        "root-application.json",
        "resources.json",
        "pods.json",
        "events.jsonl",
    }
    for text in written.values():
        _assert_clean(text)
    assert "ml-inference-demo" in written["application.json"]
