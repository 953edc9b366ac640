"""Port-forwards and the service's URL: read from the tool's own output, failures named, nothing left running.

Stand-in processes print what `kubectl port-forward` and `minikube service --url` print; the
reading and cleanup are real.
"""

from __future__ import annotations

import sys

import pytest

from pipeline.targets.kube import environment
from pipeline.targets.kube.environment import FORWARDING as KUBECTL_FORWARDING
from pipeline.targets.kube.environment import KeptProcess, KubeEnvironment, port_forward_argv
from pipeline.targets.kube.plan import StepFailed

FORWARDING = "print('Forwarding from 127.0.0.1:45678 -> 8080', flush=True); import time; time.sleep(120)"
#: `minikube service --url` with the Docker driver on macOS or Windows: the URL, a warning, and the
#: command stays in the foreground, as the tunnel the URL goes through lives only while it runs.
TUNNEL = (
    "import sys, time; print('http://127.0.0.1:51082', flush=True); "
    "print('! Because you are using a Docker driver on darwin, the terminal needs to be open to run it.',"
    " file=sys.stderr, flush=True); time.sleep(120)"
)
REFUSED = "import sys; print('error: services \"ml-inference\" not found', flush=True); sys.exit(1)"


def test_reads_the_port_kubectl_chose_and_stops_the_process() -> None:
    forward = KeptProcess((sys.executable, "-c", FORWARDING), KUBECTL_FORWARDING)
    try:
        assert forward.url == "http://127.0.0.1:45678"
        assert forward.process.poll() is None
    finally:
        forward.stop()
    assert forward.process.poll() is not None


def test_a_failed_forward_is_named() -> None:
    with pytest.raises(StepFailed, match="not found"):
        KeptProcess((sys.executable, "-c", REFUSED), KUBECTL_FORWARDING)


def test_forwards_bind_loopback_and_let_kubectl_pick_the_port() -> None:
    argv = port_forward_argv(
        ("kubectl", "--context", "kind-ml-gitops"), "ml-inference-test", "service/ml-inference", 80
    )
    assert argv[-4:] == ("-n", "ml-inference-test", "service/ml-inference", ":80")
    assert argv[4:6] == ("--address", "127.0.0.1")


def test_a_service_url_command_that_stays_in_the_foreground_keeps_its_tunnel_until_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # down() closes what connect() opened, no teardown
    monkeypatch.setattr(environment, "application_events", lambda context, name: lambda timeout: iter(()))
    env = KubeEnvironment(
        name="test", namespace="ml-inference-test", application="ml-inference-test",
        kubectl=(sys.executable, "-c", REFUSED), context="minikube", desired=[], target="minikube",
        endpoint_argv=(sys.executable, "-c", TUNNEL),
    )  # fmt: skip
    env.connect()
    try:
        assert env.endpoint == "http://127.0.0.1:51082"
        tunnels = [forward.process for forward in env._forwards if forward.process.poll() is None]
        assert len(tunnels) == 1, "the command the URL came from must keep running: it is the tunnel"
    finally:
        env.down()
    assert all(forward.process.poll() is not None for forward in env._forwards) and not env._forwards


def test_an_address_from_a_command_that_exits_is_read() -> None:
    """`docker port` (kind) and minikube on Linux print the address and exit."""
    printed = KeptProcess((sys.executable, "-c", "print('127.0.0.1:40317')"))
    printed.stop()
    assert printed.url == "http://127.0.0.1:40317"


#: `kubectl get pods` with two ready pods, and `kubectl port-forward` to any of them.
FAKE_KUBECTL = """
import json, random, sys, time
if "port-forward" in sys.argv:
    print(f"Forwarding from 127.0.0.1:{random.randint(20000, 60000)} -> 8080", flush=True)
    time.sleep(120)
else:
    ready = [{"type": "Ready", "status": "True"}]
    pods = [{"metadata": {"name": f"ml-inference-{i}"}, "status": {"conditions": ready}} for i in range(2)]
    print(json.dumps({"items": pods}))
"""


def test_each_ready_pod_is_forwarded_once_however_often_its_url_is_asked(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # deploy, test and the demo each ask more than once; a new port-forward per pod per ask piled up.
    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # down() closes the forwards, no teardown
    kubectl = tmp_path / "kubectl.py"
    kubectl.write_text(FAKE_KUBECTL)
    env = KubeEnvironment(
        name="test", namespace="ml-inference-test", application="ml-inference-test",
        kubectl=(sys.executable, str(kubectl)), context="kind-ml-gitops", desired=[], target="kind",
        endpoint_argv=(sys.executable, "-c", REFUSED),
    )  # fmt: skip
    try:
        first = env.replica_urls()
        assert len(first) == 2
        assert env.replica_urls() == first
        assert len([forward for forward in env._forwards if forward.process.poll() is None]) == 2
    finally:
        env.down()
    assert not env._forwards
