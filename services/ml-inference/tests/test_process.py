"""The real process: command line, shared port, and the SIGTERM drain under in-flight requests.

Starting a replica is the expensive part, so one `resident` replica on the module's shared port
serves every test that only sends it requests (they count its predictions before and after);
a test that stops a replica or holds its model load starts that replica itself. Nothing here
sleeps for a fixed time: tests poll for the state they need (`wait_for`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pipeline.ports import free_port

from .processes import ServiceProcess, wait_for

DRAIN_TIMEOUT = 5.0
ROW = b"[5.1, 3.5, 1.4, 0.2]"
#: Start-up of the test's own clients, and a replica's answers once it has left (seconds).
UNDER_WAY_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def shared_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def resident(model_dir: Path, shared_port: int) -> Iterator[ServiceProcess]:
    """A ready replica on `shared_port` that no test stops or reconfigures."""
    with ServiceProcess(model_dir, shared_port=shared_port) as replica:
        yield replica


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """A new connection per request (`Connection: close`): the kernel balances connections, not
    requests, so each request may land on any replica. One client, so one SSL context, for all."""
    with httpx.Client(headers={"Connection": "close"}, timeout=DRAIN_TIMEOUT) as client:
        yield client


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


def test_serve_on_a_port_another_program_holds_exits_with_the_port_in_use_status(model_dir: Path) -> None:
    from ml_inference.server import EXIT_PORT_IN_USE

    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "ml_inference", "serve", "--model-dir", str(model_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "ML_INFERENCE_HOST": "127.0.0.1", "ML_INFERENCE_PORT": str(port)},
        )
    # A supervisor that chose the port tells this from a crash, and picks another.
    assert result.returncode == EXIT_PORT_IN_USE
    assert result.stderr.count("\n") == 1
    assert f"port {port}" in result.stderr and "in use" in result.stderr


@pytest.mark.slow
def test_replicas_share_one_port(
    model_dir: Path, shared_port: int, resident: ServiceProcess, http: httpx.Client
) -> None:
    before = _count_predictions(http, resident.url)
    with ServiceProcess(model_dir, shared_port=shared_port) as second:
        for _ in range(60):
            assert _predict_status(http, shared_port) == 200
        served = [_count_predictions(http, resident.url) - before, _count_predictions(http, second.url)]
        assert sum(served) == 60
        assert min(served) > 0, served


@pytest.mark.slow
def test_a_replica_joins_a_shared_port_only_once_its_model_is_loaded(
    model_dir: Path, tmp_path: Path, shared_port: int, resident: ServiceProcess, http: httpx.Client
) -> None:
    release = tmp_path / "release-load"
    before = _count_predictions(http, resident.url)
    with ServiceProcess(model_dir, shared_port=shared_port, release_load=release) as loading:
        assert http.get(f"{loading.url}/ready").json()["reason"] == "model is loading"
        # A new connection per request, so that the kernel could pick either replica each time.
        statuses = [_predict_status(http, shared_port) for _ in range(40)]
        assert statuses == [200] * 40
        assert _count_predictions(http, resident.url) - before == 40

        release.touch()
        loading.wait_ready()
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while _count_predictions(http, loading.url) == 0:
            assert time.monotonic() < deadline, "the loaded replica never got a share of the shared port"
            statuses.append(_predict_status(http, shared_port))
        assert set(statuses) == {200}
        assert any(line.get("msg") == "joined shared port" for line in loading.lines)


@pytest.mark.slow
def test_sigterm_drains_in_flight_requests_and_exits_zero(model_dir: Path, http: httpx.Client) -> None:
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
        wait_for(lambda: load.ok > 0 or load.failures, "the load got no answer", UNDER_WAY_TIMEOUT)
        assert load.ok > 0, load.failures

        sent_at = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        answers: list[httpx.Response] = []
        # Ready until the signal is handled, then "not ready" for the whole drain.
        wait_for(
            lambda: answers.append(http.get(f"{service.url}/ready")) or answers[-1].status_code != 200,
            "the service still said it was ready while draining",
            DRAIN_TIMEOUT,
        )
        assert answers[-1].status_code == 503
        assert "draining" in answers[-1].json()["reason"]

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


@pytest.mark.slow
def test_a_replica_leaves_a_shared_port_without_failing_a_request(
    model_dir: Path, shared_port: int, resident: ServiceProcess, http: httpx.Client
) -> None:
    staying = resident
    before = _count_predictions(http, staying.url)
    with ServiceProcess(model_dir, shared_port=shared_port) as leaving:
        stop = threading.Event()
        outcomes: list[list[str]] = [[] for _ in range(4)]

        def client(mine: list[str]) -> None:
            # Keep-alive, reconnecting when told `Connection: close`, as Locust or requests would.
            with httpx.Client(base_url=f"http://127.0.0.1:{shared_port}", timeout=DRAIN_TIMEOUT) as session:
                while not stop.is_set():
                    try:
                        response = session.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
                        mine.append("ok" if response.status_code == 200 else f"{response.status_code}")
                    except httpx.HTTPError as error:
                        mine.append(repr(error))

        clients = [threading.Thread(target=client, args=(mine,)) for mine in outcomes]
        for thread in clients:
            thread.start()
        try:
            # Every client is under way (holding its keep-alive connection) before the replica leaves.
            wait_for(
                lambda: all(len(mine) >= 5 for mine in outcomes), "a client got no answers", UNDER_WAY_TIMEOUT
            )
            leaving.process.send_signal(signal.SIGTERM)
            assert leaving.process.wait(timeout=DRAIN_TIMEOUT + 5) == 0
            # And the clients go on being answered once it has gone.
            after = sum(map(len, outcomes))
            wait_for(
                lambda: sum(map(len, outcomes)) >= after + 20, "no answers after it left", UNDER_WAY_TIMEOUT
            )
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=DRAIN_TIMEOUT)
        failures = [outcome for mine in outcomes for outcome in mine if outcome != "ok"]
        assert failures == []
        assert sum(map(len, outcomes)) > 20
        assert _count_predictions(http, staying.url) > before


@pytest.mark.slow
def test_an_oversized_body_is_refused_before_it_is_sent_whole(resident: ServiceProcess) -> None:
    # The resident has the default limit, 1 MiB: announce 10 MB and send 1 KB of it. The answer
    # must come without waiting for the rest (_read_response gives up after DRAIN_TIMEOUT).
    with socket.create_connection(("127.0.0.1", resident.port)) as sock:
        sock.sendall(
            b"POST /predict/batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n" + b'{"instances": [' + ROW * 40
        )
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert b'"field":"$"' in answer


def test_head_answers_every_get_route_as_get_does_without_a_body(
    resident: ServiceProcess, http: httpx.Client
) -> None:
    # RFC 9110: a server that answers GET answers HEAD too; uptime checkers and some balancers send it.
    for path in ("/health", "/ready", "/v2/health/live", "/v2/health/ready", "/v2/models/sklearn-iris"):
        got, head = http.get(resident.url + path), http.head(resident.url + path)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-type"] == got.headers["content-type"], path
    assert http.head(resident.url + "/predict").status_code == 405, "a POST-only route stays POST-only"
    metrics = http.get(resident.url + "/metrics").text
    assert 'ml_inference_requests_total{method="HEAD",route="/health",status="200"} 1.0' in metrics


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


def _predict_status(http: httpx.Client, port: int) -> int:
    return http.post(f"http://127.0.0.1:{port}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}).status_code


def _count_predictions(http: httpx.Client, url: str) -> int:
    for line in http.get(f"{url}/metrics").text.splitlines():
        if (
            line.startswith("ml_inference_requests_total")
            and 'route="/predict"' in line
            and 'status="200"' in line
        ):
            return int(float(line.split()[-1]))
    return 0
