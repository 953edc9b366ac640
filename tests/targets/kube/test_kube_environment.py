"""Port-forwards: the URL comes from kubectl's own output, failures are named, nothing is left running.

A stand-in process prints what `kubectl port-forward` prints; the reading and cleanup are real.
"""

from __future__ import annotations

import sys

import pytest

from pipeline.targets.kube.environment import PortForward, port_forward_argv
from pipeline.targets.kube.plan import StepFailed

FORWARDING = "print('Forwarding from 127.0.0.1:45678 -> 8080', flush=True); import time; time.sleep(120)"
REFUSED = "import sys; print('error: services \"ml-inference\" not found', flush=True); sys.exit(1)"


def test_reads_the_port_kubectl_chose_and_stops_the_process() -> None:
    forward = PortForward((sys.executable, "-c", FORWARDING))
    try:
        assert forward.url == "http://127.0.0.1:45678"
        assert forward.process.poll() is None
    finally:
        forward.stop()
    assert forward.process.poll() is not None


def test_a_failed_forward_is_named() -> None:
    with pytest.raises(StepFailed, match="not found"):
        PortForward((sys.executable, "-c", REFUSED))


def test_forwards_bind_loopback_and_let_kubectl_pick_the_port() -> None:
    argv = port_forward_argv(
        ("kubectl", "--context", "kind-ml-gitops"), "ml-inference-test", "service/ml-inference", 80
    )
    assert argv[-4:] == ("-n", "ml-inference-test", "service/ml-inference", ":80")
    assert argv[4:6] == ("--address", "127.0.0.1")
