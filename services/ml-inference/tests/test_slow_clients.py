"""Clients that send too much, too slowly or too many connections: each gets an answer, never a hang.

Real processes on real sockets: what is tested is what the kernel and the HTTP server do.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ml_inference import protocol

from .conftest import require_program
from .processes import ServiceProcess

#: Every test here runs real service processes on real sockets (the `slow` marker's definition).
pytestmark = pytest.mark.slow

#: A few MB, well above the 1 MiB default body limit: what urllib used to get a reset for.
BIG_BODY = b"[" + b"0," * 2_200_000 + b"0]"
CHUNK = 64 * 1024
ANSWER_TIMEOUT_SECONDS = 10.0
PATHS = ("/predict/batch", "/v2/models/sklearn-iris/infer")


@pytest.fixture(scope="module")
def service(model_dir: Path) -> Iterator[ServiceProcess]:
    with ServiceProcess(model_dir) as running:
        yield running


@pytest.fixture(scope="module")
def impatient(model_dir: Path) -> Iterator[ServiceProcess]:
    """One service with 1 s body and keep-alive timeouts, shared by the tests that wait them out."""
    with ServiceProcess(model_dir, body_timeout_seconds=1, keep_alive_timeout_seconds=1) as running:
        yield running


def _chunks() -> Iterator[bytes]:
    for start in range(0, len(BIG_BODY), CHUNK):
        yield BIG_BODY[start : start + CHUNK]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_urllib_gets_the_413_for_a_body_of_a_few_mb(
    service: ServiceProcess, path: str, chunked: bool
) -> None:
    request = urllib.request.Request(
        service.url + path,
        data=_chunks() if chunked else BIG_BODY,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT_SECONDS)
    assert refused.value.code == 413
    assert b"ML_INFERENCE_MAX_BODY_BYTES" in refused.value.read()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_httpx_gets_the_413_for_a_body_of_a_few_mb(service: ServiceProcess, chunked: bool) -> None:
    response = httpx.post(
        service.url + PATHS[0],
        content=_chunks() if chunked else BIG_BODY,
        headers={"Content-Type": "application/json"},
        timeout=ANSWER_TIMEOUT_SECONDS,
    )
    assert response.status_code == 413


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_curl_gets_the_413_for_a_body_of_a_few_mb(
    service: ServiceProcess, chunked: bool, tmp_path: Path
) -> None:
    curl = require_program("curl")
    body = tmp_path / "body.json"
    body.write_bytes(BIG_BODY)
    command = [curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json"]
    if chunked:
        command += ["-H", "Transfer-Encoding: chunked"]
    result = subprocess.run(
        [
            *command,
            "--max-time",
            str(ANSWER_TIMEOUT_SECONDS),
            "--data-binary",
            f"@{body}",
            service.url + PATHS[0],
        ],
        capture_output=True,
        text=True,
        timeout=ANSWER_TIMEOUT_SECONDS + 5,
    )
    assert result.stdout == "413", result.stderr


def _read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the connection stayed open: {received[:200]!r}")


def _answer_to(port: int, request: bytes) -> bytes:
    """What the server answers to `request` (often a partial one), read until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        return _read_until_closed(sock, timeout=5)


@contextmanager
def _holding(port: int, connections: int) -> Iterator[None]:
    """`connections` open, silent connections to `port`, once the server has accepted them all."""
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    try:
        time.sleep(0.2)  # the server has accepted them all
        yield
    finally:
        for sock in held:
            sock.close()


def test_a_body_that_stops_arriving_gets_a_408(impatient: ServiceProcess) -> None:
    answer = _answer_to(
        impatient.port,
        b"POST /predict/batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + b'{"instances": [',
    )
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"ML_INFERENCE_BODY_TIMEOUT_SECONDS" in answer
    assert httpx.post(f"{impatient.url}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}).status_code == 200


def test_headers_larger_than_the_limit_get_a_431_before_they_are_read_whole(service: ServiceProcess) -> None:
    # Else one request with a 64 MiB header holds 64 MiB of the replica's memory limit.
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Pad: ")
        try:
            for _ in range(64):  # up to 4 MiB, far past the limit; the server stops reading first
                sock.sendall(b"a" * CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _read_until_closed(sock, timeout=5)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    ordinary = httpx.get(f"{service.url}/health", headers={"X-Pad": "a" * 8192})
    assert ordinary.status_code == 200


def test_a_408_carries_the_clients_request_id_and_a_date(impatient: ServiceProcess) -> None:
    # The README: the request id is echoed in the answer; RFC 9110: a server with a clock sends Date.
    answer = _answer_to(
        impatient.port,
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"X-Request-ID: slow-body-1\r\nContent-Length: 100\r\n\r\n" + b'{"feat',
    )
    head = answer.partition(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 408"), answer[:200]
    assert b"\r\nx-request-id: slow-body-1" in head and b"\r\ndate: " in head, head


@pytest.mark.parametrize(
    "request_bytes",
    [b"GARBAGE\r\n\r\n", b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n"],
    ids=["no request line", "content-length not a number"],
)
def test_a_request_that_is_not_http_gets_a_json_400(service: ServiceProcess, request_bytes: bytes) -> None:
    # Every error of the service is JSON (errors.py); uvicorn's own is plain text.
    head, _, body = _answer_to(service.port, request_bytes).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"\r\ncontent-type: application/json" in head.lower() and b"\r\ndate: " in head.lower()
    assert json.loads(body) == {"error": protocol.NOT_HTTP, "field": None}


def test_headers_that_stop_arriving_get_a_408(impatient: ServiceProcess) -> None:
    answer = _answer_to(impatient.port, b"POST /predict/batch HTTP/1.1\r\nHost: test\r\nContent-Ty")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    impatient: ServiceProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = _read_until_closed_after_answer(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_a_connection_that_never_sends_a_byte_is_closed_after_the_keep_alive_timeout(
    impatient: ServiceProcess,
) -> None:
    # Else a few hundred silent connections hold the cap, and every other client gets a 503.
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        started = time.monotonic()
        assert _read_until_closed(sock, timeout=5) == b""
    assert time.monotonic() - started >= 0.8, "closed before the keep-alive timeout"


def _read_until_closed_after_answer(sock: socket.socket) -> bytes:
    """The answer, then the server's close within a little more than the 1 s keep-alive timeout."""
    started = time.monotonic()
    answer = _read_until_closed(sock, timeout=3)
    assert time.monotonic() - started >= 0.8, "closed before the keep-alive timeout"
    return answer


def test_connections_beyond_the_cap_get_a_counted_503_naming_the_limit_and_the_others_are_served(
    model_dir: Path,
) -> None:
    cap = 20
    with ServiceProcess(model_dir, max_connections=cap) as service:
        with _holding(service.port, cap):
            refused = httpx.post(f"{service.url}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
            assert refused.status_code == 503
            assert "ML_INFERENCE_MAX_CONNECTIONS" in refused.json()["error"]
            assert refused.headers["x-request-id"]
        time.sleep(0.2)
        assert (
            httpx.post(f"{service.url}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}).status_code == 200
        )
        # The refusal is counted like any answer, so the error-ratio alert sees an overload.
        metrics = httpx.get(f"{service.url}/metrics").text
        assert 'ml_inference_requests_total{method="POST",route="/predict",status="503"} 1.0' in metrics


def test_a_connection_opened_within_the_cap_is_served_while_later_ones_are_refused(model_dir: Path) -> None:
    # Else a few idle keep-alive connections past the cap would have every client refused.
    body = {"features": [5.1, 3.5, 1.4, 0.2]}
    with (
        ServiceProcess(model_dir, max_connections=3) as service,
        httpx.Client(base_url=service.url) as client,
    ):
        assert client.post("/predict", json=body).status_code == 200
        with _holding(service.port, 3):
            assert client.post("/predict", json=body).status_code == 200
            assert httpx.post(f"{service.url}/predict", json=body).status_code == 503


def test_health_probes_are_answered_at_the_connection_cap(model_dir: Path) -> None:
    # A liveness probe refused at the cap would have Kubernetes restart a replica for being busy.
    with ServiceProcess(model_dir, max_connections=3) as service, _holding(service.port, 3):
        assert (
            httpx.post(f"{service.url}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}).status_code == 503
        )
        for probe in ("/health", "/ready", "/v2/health/live", "/v2/health/ready"):
            assert httpx.get(service.url + probe).status_code == 200, probe


@pytest.mark.parametrize("path", PATHS)
def test_a_request_cut_by_the_read_timeout_is_counted_as_408_not_as_an_error(
    impatient: ServiceProcess, path: str
) -> None:
    request = f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n".encode()
    assert _answer_to(impatient.port, request + b"Content-Length: 1000\r\n\r\n{").startswith(b"HTTP/1.1 408")
    metrics = httpx.get(f"{impatient.url}/metrics").text
    route = path.replace("sklearn-iris", "{model_name}")
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("ml_inference_requests_total")
        and f'route="{route}"' in line
        and " 0.0" not in line
    ]
    assert len(counted) == 1 and 'status="408"' in counted[0], counted
    assert not [line for line in impatient.lines if line.get("level") == "error"]
