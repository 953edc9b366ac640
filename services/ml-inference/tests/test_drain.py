"""SIGTERM under slow clients, and the settle time that Kubernetes needs to stop sending traffic."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from .processes import ServiceProcess

#: Every test here runs real service processes on real sockets (the `slow` marker's definition).
pytestmark = pytest.mark.slow

DRAIN_TIMEOUT = 5.0
HALF_SENT = 150
ROW = [5.1, 3.5, 1.4, 0.2]
#: "Quickly" on a shared two-core machine: far below any timeout in play, far above a /predict.
QUICK_SECONDS = 1.0


def _half_sent_requests(port: int, count: int) -> list[socket.socket]:
    """`count` connections: two thirds sent headers and half a body, the rest half their headers."""
    sockets = []
    for index in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        if index % 3:
            sock.sendall(
                b"POST /predict/batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Content-Length: 400\r\n\r\n" + b'{"instances": [[5.1, 3.5, '
            )
        else:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: te")
        sockets.append(sock)
    return sockets


def test_half_sent_requests_neither_slow_others_down_nor_hold_up_sigterm(model_dir: Path) -> None:
    with ServiceProcess(model_dir, drain_timeout_seconds=DRAIN_TIMEOUT) as service:
        held = _half_sent_requests(service.port, HALF_SENT)
        try:
            with httpx.Client(base_url=service.url, timeout=DRAIN_TIMEOUT) as client:
                for _ in range(20):
                    started = time.monotonic()
                    assert client.post("/predict", json={"features": ROW}).status_code == 200
                    assert time.monotonic() - started < QUICK_SECONDS

            sent_at = time.monotonic()
            service.process.send_signal(signal.SIGTERM)
            code = service.process.wait(timeout=DRAIN_TIMEOUT + 5)
            elapsed = time.monotonic() - sent_at
        finally:
            for sock in held:
                sock.close()
        assert code == 0, service.lines[-5:]
        assert elapsed < DRAIN_TIMEOUT / 2, f"SIGTERM waited {elapsed:.1f} s for bodies that never came"


def test_a_draining_replica_keeps_answering_new_connections_for_the_settle_time(model_dir: Path) -> None:
    settle = 2.0
    with ServiceProcess(model_dir, drain_timeout_seconds=DRAIN_TIMEOUT, settle_seconds=settle) as service:
        sent_at = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        time.sleep(settle / 2)
        # A new connection, as from a kube-proxy rule that still names this pod.
        late = httpx.post(f"{service.url}/predict", json={"features": ROW}, headers={"connection": "close"})
        assert late.status_code == 200
        assert service.process.wait(timeout=settle + DRAIN_TIMEOUT + 5) == 0
        assert time.monotonic() - sent_at >= settle
