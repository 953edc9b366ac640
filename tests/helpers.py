"""What the repo-level tests share: outside programs, ports, processes, a trained model, job runs.

Plain functions rather than fixtures, so each test module keeps its fixtures visible where they are used.
Tests that need an outside program (dockerd, prometheus, chromium, ...) skip on a developer's machine
without it, but fail in CI (`CI=true`), where `.ci/run` installs and starts all of them: a green CI can
then never hide a skipped check.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline import scrub
from pipeline.targets.local.target import STATE_ROOT_VARIABLE
from pipeline.timestamps import iso, moment

REPO = Path(__file__).resolve().parents[1]


def missing(message: str) -> None:
    """Skip the test on a developer's machine, fail it in CI, saying what is missing."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def written_as_records_write_times(value: object) -> bool:
    """`value` is a time stamp as pipeline.timestamps writes every record's (UTC, milliseconds, Z)."""
    when = moment(value)
    return when is not None and iso(when) == value


def read_only_under(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """A fake read-only mount at `folder` (root writes through permission bits, and tests cannot mount)."""
    write = scrub.write_text_atomic

    def refusing(path: Path, text: str) -> None:
        if path.is_relative_to(folder):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        write(path, text)

    monkeypatch.setattr(scrub, "write_text_atomic", refusing)


def require_program(name: str, *, probe: list[str] | None = None) -> str:
    """Path of `name`, or skip (fail in CI) naming what is missing and how to get it."""
    path = shutil.which(name)
    ok = path is not None
    if ok and probe is not None:
        ok = subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    if not ok:
        missing(f"{name} is not available here; .ci/run installs it (see README)")
    return str(path)


def require_env(name: str, how: str) -> str:
    """The value of environment variable `name`, or skip (fail in CI) saying `how` to set it."""
    value = os.environ.get(name)
    if not value:
        missing(f"{name} is not set; {how}")
    return str(value)


class QuietHandler(BaseHTTPRequestHandler):
    """A stand-in server's request handler: `answer` sends one body; nothing clutters the test output."""

    def answer(self, code: int, body: str | bytes, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def cut_short_server() -> Iterator[str]:
    """A server on 127.0.0.1 whose every answer promises 100 bytes, sends 10 and hangs up: its URL."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"jobs": [')
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def stop(process: subprocess.Popen) -> None:
    """Terminate `process`, killing it when it does not exit within ten seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def stopped_at_exit() -> Iterator[list[subprocess.Popen]]:
    """A list for the processes a test starts; all stopped at the end (last first), whatever happened."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            stop(process)


def train_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly trained model folder, as the build job leaves it."""
    model = tmp_path_factory.mktemp("build") / "model"
    subprocess.run(
        [sys.executable, "-m", "ml_inference", "train", "--out", str(model)], check=True, timeout=120
    )
    return model


def local_job_artifacts(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An artifacts folder holding the build job's model; jobs get a local target under tmp_path."""
    artifacts = tmp_path / "artifacts"
    (artifacts / "build-output").mkdir(parents=True)
    (artifacts / "build-output" / "model").symlink_to(model_dir)
    monkeypatch.setenv("PIPELINE_ARTIFACTS_DIR", str(artifacts))
    monkeypatch.setenv("PIPELINE_TARGET", "local")
    monkeypatch.delenv("PIPELINE_KEEP", raising=False)
    monkeypatch.delenv("PIPELINE_DRY_RUN", raising=False)
    monkeypatch.setenv(STATE_ROOT_VARIABLE, str(tmp_path / "state"))
    return artifacts


def run_job(job: str, environ: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`nox -s <job>` without nox: the job's module from the repo root, in this test session's Python."""
    return subprocess.run(
        [sys.executable, "-m", f"pipeline.jobs.{job}"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def interrupt_job(
    job: str, args: list[str], environ: Mapping[str, str], once: Callable[[str], bool], timeout: float = 60
) -> tuple[int, str]:
    """Run a job's module in a session of its own and SIGINT its group, as Ctrl-C or the runner do,
    once what it printed satisfies `once`; (exit code, everything it printed). Killed past `timeout`."""
    process = subprocess.Popen(
        [sys.executable, "-m", f"pipeline.jobs.{job}", *args],
        cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    seen = ""
    try:
        deadline = time.monotonic() + timeout
        while not once(seen) and time.monotonic() < deadline:
            seen += process.stdout.readline()
        os.killpg(process.pid, signal.SIGINT)
        seen += process.communicate(timeout=timeout)[0]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, seen


def run_report_job(artifacts_dir: Path, **environ: str) -> subprocess.CompletedProcess:
    """The report job on `artifacts_dir`, with only `environ` of GITHUB_*, PIPELINE_*."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GITHUB_", "PIPELINE_"))}
    env.update({"PIPELINE_ARTIFACTS_DIR": str(artifacts_dir), "PIPELINE_REPORT_SCREENSHOT": "0", **environ})
    return run_job("report", env, timeout=120)


@contextmanager
def kube_api_server(
    handler: type[BaseHTTPRequestHandler], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """`handler` served on 127.0.0.1 as the API server of the kubernetes client's default kubeconfig.

    No cluster runs here: this is how the real client is tested against a stand-in that answers
    like the Kubernetes API. Needs the kubernetes package (callers importorskip it).
    """
    import kubernetes.config.kube_config

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}
                ],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "kind-ml-gitops", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "kind-ml-gitops",
            }
        )
    )
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
