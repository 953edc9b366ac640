"""No secret of the environment reaches the artifacts: the whole local pipeline, run with canaries.

Canaries are planted where real credentials sit on a developer's machine or a CI runner: secret
and ordinary environment variables, the Git remote (user:token@ in origin's URL), a proxy URL, a
kubeconfig token and a command line. Then every file the run leaves under `artifacts/` is searched
for them. The pipeline never contacts the remote or the proxy: the local target reads origin's URL
only (build's source label), and NO_PROXY=* keeps every HTTP client (pip and uv in the nox venvs,
the jobs' own clients on 127.0.0.1) off the proxy. The remote is set through GIT_CONFIG_* variables,
so the checkout itself is left untouched and the test needs no clone (whose venvs nox would rebuild).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import require_program

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_SECONDS = 20 * 60

pytestmark = pytest.mark.slow

CANARIES = {
    "secret-named variable": "CANARYsecretvar1",
    "ordinary variable holding a URL": "CANARYdburl2",
    "git remote": "CANARYgitremote3",
    "proxy": "CANARYproxy4",
    "kubeconfig": "CANARYkubetoken5",
    "command line": "CANARYcmdline6",
}


def canary_environment(tmp_path: Path) -> dict[str, str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: " + CANARIES["kubeconfig"] + "}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
    )
    proxy = f"http://proxyuser:{CANARIES['proxy']}@proxy.example.invalid:3128"
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "ML_DEMO_API_TOKEN": CANARIES["secret-named variable"],
        "ML_DEMO_DATABASE_URL": f"postgres://app:{CANARIES['ordinary variable holding a URL']}@db.invalid/ml",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "remote.origin.url",
        "GIT_CONFIG_VALUE_0": f"https://robot:{CANARIES['git remote']}@example.invalid/x.git",
        **{name: proxy for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")},
        **{name: "*" for name in ("NO_PROXY", "no_proxy")},
        "KUBECONFIG": str(kubeconfig),
    }


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    require_program("prometheus")
    scratch = tmp_path_factory.mktemp("canaries")
    artifacts = scratch / "artifacts"
    # The command line: the pipeline runs under a parent whose arguments carry a password.
    wrapper = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[4:]))"
    command = [sys.executable, "-c", wrapper, "--password", CANARIES["command line"], "--"]
    command += [sys.executable, "-m", "invoke", "pipeline", "--parallel", "--artifacts-dir", str(artifacts)]
    result = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        env=canary_environment(scratch),
    )
    return result, artifacts


def test_the_pipeline_succeeds_with_the_canaries_planted(canary_run) -> None:
    result, artifacts = canary_run
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert {job["status"] for job in record["jobs"].values()} == {"success"}


def test_no_canary_is_anywhere_in_the_artifacts(canary_run) -> None:
    _, artifacts = canary_run
    files = [path for path in artifacts.rglob("*") if path.is_file()]
    assert len(files) > 20  # the whole run's artifacts, not an empty folder
    leaks = {
        where: [str(path.relative_to(artifacts)) for path in files if canary.encode() in path.read_bytes()]
        for where, canary in CANARIES.items()
    }
    assert leaks == {where: [] for where in CANARIES}


def test_replicas_are_recorded_without_the_callers_variables(canary_run) -> None:
    _, artifacts = canary_run
    processes = json.loads((artifacts / "cluster-state" / "processes.json").read_text())
    environments = [row["environment"] for row in processes if isinstance(row.get("environment"), dict)]
    assert environments, "no replica's environment was recorded"
    # Replicas get Git's environment plus a few basics, never the caller's (docs/local-target.md).
    assert not any("ML_DEMO_API_TOKEN" in env or "ML_DEMO_DATABASE_URL" in env for env in environments)
