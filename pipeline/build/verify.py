"""Does the built image serve? Run it the way production runs it, and ask it.

The container runs as the image's own non-root user, with a read-only root filesystem and a
tmpfs on /tmp only, every capability dropped, published on a free 127.0.0.1 port. The checks run
in order and stop at the first failure (later ones depend on earlier ones); the container's log
is kept whatever happens.
"""

from __future__ import annotations

import errno
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import docker
import docker.errors
import msgspec
from docker.models.containers import Container

from pipeline.artifacts import write_json_atomic
from pipeline.build import BuildError
from pipeline.build.image import image_details
from pipeline.contracts import Check
from pipeline.ports import free_port
from pipeline.samples import SETOSA, predict_body

log = logging.getLogger(__name__)

CONTAINER_PORT = "8080/tcp"
READY_TIMEOUT_SECONDS = 60
HEALTHY_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 20
#: A setosa from the iris data set: a correct model predicts it with near certainty.
SAMPLE = predict_body(SETOSA)
EXPECTED_CLASS = "setosa"
#: Exits with the errno of a failed write to {path}, else 0.
WRITE_ERRNO = "import sys\ntry: open('{path}', 'w').write('ok')\nexcept OSError as e: sys.exit(e.errno)"
#: Override only the HEALTHCHECK's interval (the engine keeps the image's command), to see it pass soon.
FAST_HEALTHCHECK = {"interval": 1_000_000_000, "start_period": 30_000_000_000}


def _http(method: str, url: str, body: dict | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _wait(condition: Callable[[], bool], timeout: float, container: Container) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status not in ("created", "running"):
            return False
        try:
            if condition():
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.25)
    return False


def _non_root(user: str) -> Check:
    uid = user.split(":", 1)[0]
    passed = uid.isdigit() and int(uid) != 0
    return Check("numeric non-root user", passed, f"image USER is {user or 'unset (root)'!r}")


def _log(check: Check) -> None:
    log.info("verify: %s %s: %s", "ok  " if check.passed else "FAIL", check.name, check.detail)


def verify_image(client: docker.DockerClient, image_id: str, out_dir: Path) -> None:
    """Run the checks against a fresh container of `image_id`; a failed check raises BuildError naming it.

    verification.json in `out_dir` lists the checks that ran, verify-container.log the container's log.
    """
    log_file = out_dir / "verify-container.log"
    checks = _run_checks(client, image_id, image_details(client, image_id)["user"], log_file)
    write_json_atomic(out_dir / "verification.json", msgspec.to_builtins(checks))
    failed = [check for check in checks if not check.passed]
    if failed:
        raise BuildError(
            f"image {image_id[:19]} failed verification: {failed[0].name}: {failed[0].detail} "
            f"(container log: {log_file})"
        )


def _run_checks(client: docker.DockerClient, image_id: str, user: str, log_file: Path) -> list[Check]:
    """The checks against a fresh container of `image_id`; the list ends at the first failure."""
    checks = [_non_root(user)]
    _log(checks[0])
    if not checks[0].passed:
        return checks
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    container = client.containers.create(
        image_id,
        user=user,
        read_only=True,
        tmpfs={"/tmp": "rw,nosuid,nodev,size=64m"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        ports={CONTAINER_PORT: ("127.0.0.1", port)},
        healthcheck=FAST_HEALTHCHECK,
        labels={"io.ml-inference.purpose": "build-verification"},
    )
    try:
        try:
            container.start()
        except docker.errors.APIError as error:  # an entrypoint that is not there, a port taken meanwhile
            checks.append(Check("the container starts", False, str(error.explanation or error)))
            _log(checks[-1])
            return checks
        how = f"read-only, tmpfs /tmp, user {user}"
        log.info("verify: container %s on %s (%s)", container.short_id, base, how)
        for check in _checks(container, base):
            checks.append(check)
            _log(check)
            if not check.passed:
                break
    finally:
        log_file.write_bytes(container.logs(stdout=True, stderr=True))
        container.remove(force=True)
    return checks


def _write_errno(container: Container, path: str) -> int:
    """0 when writing `path` in the container works, else the write's errno."""
    code = container.exec_run(["python", "-c", WRITE_ERRNO.format(path=path)]).exit_code
    return -1 if code is None else code


def _health_status(container: Container) -> str | None:
    return container.attrs["State"].get("Health", {}).get("Status")


def _checks(container: Container, base: str) -> Iterator[Check]:
    """The verification steps, yielded one by one so that the caller can stop at a failure."""
    started = time.monotonic()
    ready = _wait(lambda: _http("GET", f"{base}/ready")[0] == 200, READY_TIMEOUT_SECONDS, container)
    waited = f"{time.monotonic() - started:.1f}s"
    if not ready:
        state = container.attrs["State"]
        how = f"exited with code {state['ExitCode']}" if container.status == "exited" else container.status
        yield Check("ready", False, f"no /ready 200 in {waited}; the container {how}")
        return
    yield Check("ready", True, f"/ready 200 after {waited}")

    status, answer = _http("POST", f"{base}/predict", SAMPLE)
    predicted = answer.get("prediction") if isinstance(answer, dict) else answer
    passed = status == 200 and predicted == EXPECTED_CLASS
    yield Check("predict", passed, f"{SAMPLE['features']} -> {status} {predicted!r}, want {EXPECTED_CLASS!r}")

    # Not streamed, so the output is the whole of it, as bytes.
    uid_output = cast(bytes, container.exec_run(["python", "-c", "import os; print(os.getuid())"]).output)
    uid = uid_output.decode().strip()
    yield Check("runs as non-root", uid.isdigit() and int(uid) != 0, f"process uid {uid}")

    # The filesystem must refuse the write (EROFS), not the permissions: the user may not write
    # /opt/model anyway, and the kernel checks a read-only mount first.
    refused, tmp_write = _write_errno(container, "/opt/model/probe"), _write_errno(container, "/tmp/probe")
    passed = refused == errno.EROFS and tmp_write == 0
    detail = (
        f"write to /opt/model: {errno.errorcode.get(refused, refused)} (want EROFS), "
        f"to /tmp: {errno.errorcode.get(tmp_write, tmp_write)} (want 0)"
    )
    yield Check("read-only root filesystem", passed, detail)

    healthy = _wait(lambda: _health_status(container) == "healthy", HEALTHY_TIMEOUT_SECONDS, container)
    yield Check("healthcheck", healthy, f"HEALTHCHECK status {_health_status(container)!r}")

    container.stop(timeout=STOP_TIMEOUT_SECONDS)
    exit_code = container.wait(timeout=STOP_TIMEOUT_SECONDS)["StatusCode"]
    yield Check("clean stop", exit_code == 0, f"exit code {exit_code} after SIGTERM")
