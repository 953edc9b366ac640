"""The real process: command line, shared port, and the SIGTERM drain under in-flight requests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from .processes import ServiceProcess

DRAIN_TIMEOUT = 5.0
ROW = b"[5.1, 3.5, 1.4, 0.2]"


def test_serve_without_a_model_exits_with_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ml_inference", "serve", "--model-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no model in" in lines[0]
    assert "python -m ml_inference train --out" in lines[0]


def test_a_bad_setting_exits_with_one_line_naming_the_variable(model_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ml_inference", "serve", "--model-dir", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ML_INFERENCE_MAX_BATCH": "0"},
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "ML_INFERENCE_MAX_BATCH" in result.stderr


def test_replicas_share_one_port(model_dir: Path) -> None:
    shared = _free_port()
    with (
        ServiceProcess(model_dir, shared_port=shared) as first,
        ServiceProcess(model_dir, shared_port=shared) as second,
    ):
        for _ in range(60):
            # A new connection per request: the kernel balances connections, not requests.
            assert httpx.post(
                f"http://127.0.0.1:{shared}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}
            ).is_success
        served = [_count_predictions(replica.url) for replica in (first, second)]
        assert sum(served) == 60
        assert min(served) > 0, served


def test_a_replica_joins_a_shared_port_only_once_its_model_is_loaded(model_dir: Path, tmp_path: Path) -> None:
    shared = _free_port()
    release = tmp_path / "release-load"
    with (
        ServiceProcess(model_dir, shared_port=shared) as ready,
        ServiceProcess(model_dir, shared_port=shared, release_load=release) as loading,
    ):
        assert httpx.get(f"{loading.url}/ready").json()["reason"] == "model is loading"
        # A new connection per request, so that the kernel could pick either replica each time.
        statuses = [_predict_status(shared) for _ in range(40)]
        assert statuses == [200] * 40
        assert _count_predictions(ready.url) == 40

        release.touch()
        loading.wait_ready()
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while _count_predictions(loading.url) == 0:
            assert time.monotonic() < deadline, "the loaded replica never got a share of the shared port"
            statuses.append(_predict_status(shared))
        assert set(statuses) == {200}
        assert any(line.get("msg") == "joined shared port" for line in loading.lines)


def test_sigterm_drains_in_flight_requests_and_exits_zero(model_dir: Path) -> None:
    with ServiceProcess(model_dir, drain_timeout_seconds=DRAIN_TIMEOUT) as service:
        # A request truly in flight: headers and half the body sent, the rest after SIGTERM.
        body = b'{"instances": [' + b", ".join([ROW] * 200) + b"]}"
        half = len(body) // 2
        slow = socket.create_connection(("127.0.0.1", service.port))
        slow.sendall(
            b"POST /predict/batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:half]
        )
        load = _KeepAliveLoad(service.url, clients=4)
        load.start()
        time.sleep(0.5)
        assert load.ok > 0, load.failures

        sent_at = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        ready = httpx.get(f"{service.url}/ready")
        assert ready.status_code == 503
        assert "draining" in ready.json()["reason"]

        slow.sendall(body[half:])
        answer = _read_response(slow)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert b'"count":200' in answer

        code = service.process.wait(timeout=DRAIN_TIMEOUT + 5)
        elapsed = time.monotonic() - sent_at
        load.join()
        assert code == 0, service.lines[-5:]
        assert elapsed < DRAIN_TIMEOUT
        assert load.failures == []
        assert load.ok > 0
        assert any(line.get("msg") == "draining" for line in service.lines)


def test_a_replica_leaves_a_shared_port_without_failing_a_request(model_dir: Path) -> None:
    shared = _free_port()
    with (
        ServiceProcess(model_dir, shared_port=shared) as leaving,
        ServiceProcess(model_dir, shared_port=shared) as staying,
    ):
        stop = threading.Event()
        outcomes: list[str] = []

        def client() -> None:
            # Keep-alive, reconnecting when told `Connection: close`, as Locust or requests would.
            with httpx.Client(base_url=f"http://127.0.0.1:{shared}", timeout=DRAIN_TIMEOUT) as session:
                while not stop.is_set():
                    try:
                        response = session.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
                        outcomes.append("ok" if response.status_code == 200 else f"{response.status_code}")
                    except httpx.HTTPError as error:
                        outcomes.append(repr(error))

        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        time.sleep(0.5)
        leaving.process.send_signal(signal.SIGTERM)
        assert leaving.process.wait(timeout=DRAIN_TIMEOUT + 5) == 0
        time.sleep(0.3)
        stop.set()
        for thread in clients:
            thread.join(timeout=DRAIN_TIMEOUT)
        failures = [outcome for outcome in outcomes if outcome != "ok"]
        assert failures == []
        assert len(outcomes) > 20
        assert _count_predictions(staying.url) > 0


def test_an_oversized_body_is_refused_before_it_is_sent_whole(model_dir: Path) -> None:
    with ServiceProcess(model_dir, max_body_bytes=4096) as service:
        with socket.create_connection(("127.0.0.1", service.port)) as sock:
            # Announce 10 MB, send 1 KB of it: the answer must come without waiting for the rest.
            sock.sendall(
                b"POST /predict/batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Content-Length: 10000000\r\n\r\n" + b'{"instances": [' + ROW * 40
            )
            answer = _read_response(sock)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"connection: close" in answer.lower()
        assert b'"field":"$"' in answer


class _KeepAliveLoad:
    """Clients that loop on /predict/batch over keep-alive connections until told to leave.

    A draining server says `Connection: close`; a client then goes away (as it would to another
    replica). Every request it did send must have succeeded.
    """

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=DRAIN_TIMEOUT)

    def _run(self) -> None:
        body = {"instances": [[5.1, 3.5, 1.4, 0.2]] * 50}
        with httpx.Client(base_url=self.url, timeout=DRAIN_TIMEOUT) as client:
            while True:
                try:
                    response = client.post("/predict/batch", json=body)
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    return
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text}")
                    return
                self.ok += 1
                if response.headers.get("connection") == "close":
                    return


def _read_response(sock: socket.socket) -> bytes:
    sock.settimeout(DRAIN_TIMEOUT)
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return data


def _predict_status(port: int) -> int:
    return httpx.post(f"http://127.0.0.1:{port}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}).status_code


def _count_predictions(url: str) -> int:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if (
            line.startswith("ml_inference_requests_total")
            and 'route="/predict"' in line
            and 'status="200"' in line
        ):
            return int(float(line.split()[-1]))
    return 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
