"""The build job for real: train, build the image on the local base image, verify, record, cache.

One image is built per session (`built`) and shared: the tests that look at the image or the record
reuse it. The only second build is the source-change rebuild, made in a temporary copy of the
repository (the real checkout is never modified), which reuses the cached dependency layer.
Needs a Docker engine and BASE_IMAGE (`.ci/run` makes it with scripts/make-base-image.sh); the
no-engine tests need neither.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import docker.errors
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipeline.ports import free_port
from tests.helpers import require_env, require_program

REPO = Path(__file__).resolve().parents[2]
SERVICE = Path("services/ml-inference")
JOB_TIMEOUT_SECONDS = 600
IMAGE_SIZE_LIMIT_BYTES = 250 * 1000 * 1000
OUTPUT_KEYS = {"model_version", "model_sha256", "image_status", "image_tag", "image_id", "image_digest"}
DEAD_ENGINE = "unix:///nonexistent/docker.sock"

pytestmark = pytest.mark.slow


@dataclass
class JobRun:
    result: subprocess.CompletedProcess[str]
    output_dir: Path

    @property
    def log(self) -> str:
        return self.result.stdout + self.result.stderr

    @property
    def record(self) -> dict:
        return json.loads((self.output_dir / "build-record.json").read_text())

    @property
    def outputs(self) -> dict:
        return json.loads((self.output_dir / "outputs.json").read_text())


def run_job(repo: Path, artifacts: Path, *args: str, **env: str) -> JobRun:
    """`nox -s build -- ARGS` without nox: the same module, in this test session's environment."""
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.jobs.build", *args],
        cwd=repo,
        env={**os.environ, "PIPELINE_ARTIFACTS_DIR": str(artifacts), **env},
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_SECONDS,
    )
    return JobRun(result, artifacts / "build-output")


def copy_repo(destination: Path) -> Path:
    """A copy of the checkout's working tree (tracked and untracked, not ignored) to modify freely."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def require_base_image() -> str:
    """BASE_IMAGE as .ci/run exports it; skip on a developer's machine without it, fail in CI."""
    require_program("docker", probe=["docker", "info"])
    return require_env("BASE_IMAGE", "run: export BASE_IMAGE=$(sudo scripts/make-base-image.sh)")


@pytest.mark.parametrize("no", ["0", "false", "no"])
def test_make_base_image_keeps_an_existing_image_unless_force_says_yes(no: str) -> None:
    """FORCE=0 is no: it must not spend a minute remaking the image (only FORCE=1 remakes it)."""
    base = require_base_image()
    script = subprocess.Popen(
        [str(REPO / "scripts/make-base-image.sh")],
        env={**os.environ, "BASE_IMAGE_REF": base, "FORCE": no},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = script.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(script.pid, signal.SIGTERM)  # the script's exit trap unmounts and removes its tree
        script.communicate(timeout=60)
        pytest.fail(f"FORCE={no} remade the image instead of keeping it")
    assert script.returncode == 0 and out == f"{base}\n", err[-2000:]
    assert "already exists; not remaking it" in err


@pytest.fixture(scope="session")
def docker_client():
    require_base_image()
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, docker_client) -> JobRun:
    """The job run once on the real checkout (artifacts in a temporary folder)."""
    base_image = require_base_image()
    run = run_job(REPO, tmp_path_factory.mktemp("build"), "--require-image", "--base-image", base_image)
    assert run.result.returncode == 0, run.log[-5000:]
    return run


# --- the built image --------------------------------------------------------------------------


def test_job_builds_verifies_and_records_the_image(built, docker_client):
    image = built.record["image"]
    assert image["status"] in ("built", "cached")  # cached when this checkout's image was built before
    assert image["verified"] is True
    assert image["base_image"] == os.environ["BASE_IMAGE"]
    assert re.fullmatch(r"ml-inference:[0-9a-f]{16}", image["tag"])
    assert docker_client.images.get(image["tag"]).id == image["image_id"]
    assert 0 < image["size_bytes"] <= IMAGE_SIZE_LIMIT_BYTES
    model = built.record["model"]
    card = json.loads((built.output_dir / "model" / "model-card.json").read_text())
    assert model == {key: card[key] for key in ("name", "version", "artifact_sha256", "test_accuracy")}
    assert (built.output_dir / "model" / "model.onnx").stat().st_size > 0


def test_outputs_hand_tag_and_id_to_later_jobs(built):
    outputs, image = built.outputs, built.record["image"]
    assert set(outputs) == OUTPUT_KEYS
    assert outputs["image_tag"] == image["tag"]
    assert outputs["image_id"] == image["image_id"]
    assert outputs["image_status"] == image["status"]
    assert outputs["image_digest"] == ""  # nothing is pushed outside GitHub Actions
    assert outputs["model_version"] == built.record["model"]["version"]


def test_image_carries_oci_labels_and_the_model_card(built, docker_client):
    image = docker_client.images.get(built.record["image"]["tag"])
    labels = image.labels
    assert labels["io.ml-inference.model.version"] == built.record["model"]["version"]
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", labels["org.opencontainers.image.revision"])
    assert labels["org.opencontainers.image.created"].endswith("Z")
    for key in ("source", "version"):
        assert labels[f"org.opencontainers.image.{key}"]
    card_in_image = docker_client.containers.run(
        image.id, entrypoint=["python", "-c", "print(open('/opt/model/model-card.json').read())"],
        remove=True, network_disabled=True,
    )  # fmt: skip
    assert json.loads(card_in_image)["artifact_sha256"] == built.record["model"]["artifact_sha256"]


def test_runtime_has_no_compiler_no_scikit_learn_and_no_pip(built, docker_client):
    probe = (
        "import importlib.util, shutil;"
        "print([m for m in ('sklearn', 'scipy', 'pip') if importlib.util.find_spec(m)],"
        " [c for c in ('gcc', 'cc', 'c++') if shutil.which(c)])"
    )
    found = docker_client.containers.run(
        built.record["image"]["image_id"],
        entrypoint=["python", "-c", probe],
        remove=True,
        network_disabled=True,
    )
    assert found.decode().strip() == "[] []"


def test_a_failed_docker_build_names_its_step_and_where_its_whole_output_is(tmp_path, docker_client):
    require_base_image()
    repo = copy_repo(tmp_path / "repo")
    dockerfile = repo / "services/ml-inference/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("\nUSER ", "\nRUN exit 3\nUSER ", 1))
    run = run_job(repo, tmp_path / "artifacts")
    assert run.result.returncode == 1, run.log[-3000:]
    log_file = run.output_dir / "image-build.log"
    assert "docker build failed at 'Step " in run.log and f"whole output in {log_file}" in run.log
    assert log_file.is_file()


def test_the_read_only_check_fails_on_a_writable_root_filesystem(built, docker_client):
    """A write the image's user may not make anyway proves nothing: the filesystem itself must refuse it."""
    from pipeline.build import verify

    image = docker_client.images.get(built.record["image"]["image_id"])
    port = free_port()
    container = docker_client.containers.run(  # no read_only: the root filesystem is writable
        image.id,
        detach=True,
        user=image.attrs["Config"]["User"],
        tmpfs={"/tmp": ""},
        ports={verify.CONTAINER_PORT: ("127.0.0.1", port)},
    )
    try:
        checks = verify._checks(container, f"http://127.0.0.1:{port}")
        check = next(check for check in checks if check.name == "read-only root filesystem")
    finally:
        container.remove(force=True)
    assert not check.passed, check.detail


def test_image_runs_non_root_read_only_passes_healthcheck_and_predicts(built, docker_client):
    """What the job's verification step does, checked independently here."""
    image = docker_client.images.get(built.record["image"]["image_id"])
    user = image.attrs["Config"]["User"]
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user), user
    container = docker_client.containers.run(
        image.id, detach=True, read_only=True, tmpfs={"/tmp": ""},
        ports={"8080/tcp": ("127.0.0.1", None)}, healthcheck={"interval": 1_000_000_000},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            container.reload()
            if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                break
            assert container.status == "running", container.logs().decode()[-2000:]
            time.sleep(0.5)
        assert container.attrs["State"]["Health"]["Status"] == "healthy", container.logs().decode()[-2000:]
        port = container.ports["8080/tcp"][0]["HostPort"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=json.dumps({"features": [6.7, 3.0, 5.2, 2.3]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
        assert answer["prediction"] == "virginica"
        assert answer["model"]["version"] == built.record["model"]["version"]
        uid = container.exec_run(["python", "-c", "import os; print(os.getuid())"]).output.decode().strip()
        assert uid == user.split(":")[0]
        assert container.exec_run(["python", "-c", "open('/opt/venv/x', 'w')"]).exit_code != 0
    finally:
        container.remove(force=True)


def test_sbom_lists_every_runtime_package(built, docker_client):
    assert built.record["sbom"] == "sbom.cdx.json"
    sbom = json.loads((built.output_dir / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    listed = {(canonicalize_name(c["name"]), c["version"]) for c in sbom["components"]}
    assert all(c["purl"].startswith("pkg:pypi/") for c in sbom["components"])
    # The lock is universal: the image holds the pins whose markers hold for the image's Python.
    python = (
        docker_client.containers.run(
            built.record["image"]["image_id"],
            entrypoint=["python", "-c", "import platform; print(platform.python_version())"],
            remove=True,
        )
        .decode()
        .strip()
    )
    environment = {
        "python_full_version": python,
        "python_version": python.rsplit(".", 1)[0],
        "sys_platform": "linux",
    }
    lock = (REPO / SERVICE / "requirements.lock").read_text()
    pins = [Requirement(line.split(" \\")[0]) for line in lock.splitlines() if re.match(r"[A-Za-z0-9]", line)]
    expected = {
        (canonicalize_name(pin.name), next(iter(pin.specifier)).version)
        for pin in pins
        if pin.marker is None or pin.marker.evaluate(environment)
    }
    assert listed == expected


# --- caching ------------------------------------------------------------------------------------


def test_second_run_skips_the_build(built, tmp_path):
    again = run_job(REPO, tmp_path, "--require-image", "--base-image", os.environ["BASE_IMAGE"])
    assert again.result.returncode == 0, again.log[-3000:]
    image = again.record["image"]
    assert (image["status"], image["cache_hit"], image["verified"]) == ("cached", True, True)
    assert (image["tag"], image["image_id"]) == (
        built.record["image"]["tag"],
        built.record["image"]["image_id"],
    )
    assert "build skipped" in again.log
    assert "reusing its model" in again.log  # training is deterministic, so an identical model is reused
    assert again.record["model"] == built.record["model"]
    assert not (again.output_dir / "image-build.log").exists()


def test_source_change_rebuilds_with_a_new_tag_reusing_the_dependency_layer(built, tmp_path, docker_client):
    repo = copy_repo(tmp_path / "repo")
    source = repo / SERVICE / "src" / "ml_inference" / "__init__.py"
    source.write_text(source.read_text() + "# a source change\n")
    rebuilt = run_job(
        repo, tmp_path / "artifacts", "--require-image", "--base-image", os.environ["BASE_IMAGE"]
    )
    try:
        assert rebuilt.result.returncode == 0, rebuilt.log[-5000:]
        image = rebuilt.record["image"]
        assert (image["status"], image["verified"]) == ("built", True)
        assert image["tag"] != built.record["image"]["tag"]
        build_log = (rebuilt.output_dir / "image-build.log").read_text()
        assert re.search(
            r"RUN /opt/pip/bin/pip --python /opt/venv/bin/python install[^\n]*\n ---> Using cache", build_log
        )
    finally:
        if rebuilt.record["image"]["tag"] != built.record["image"]["tag"]:
            docker_client.images.remove(rebuilt.record["image"]["tag"], noprune=False)


# --- push (GitHub Actions) ---------------------------------------------------------------------

#: htpasswd entry (bcrypt of "right-password") for the registry that must refuse a wrong token.
HTPASSWD = "ci:$2b$12$qTnO3K82X8sEQruK2ck9N.UIlIlwROi6doPqCIH32vIEcQJSM48MW"
FAKE_TOKEN = "ghs_not-a-real-token-0123456789"


@pytest.fixture
def registry(tmp_path: Path):
    """Start a real registry (Debian's docker-registry, the CNCF distribution) on 127.0.0.1.

    Yields a function `start(auth: bool) -> "127.0.0.1:PORT"`; dockerd pushes to loopback over HTTP.
    """
    program = require_program("docker-registry")
    processes: list[subprocess.Popen] = []

    def start(*, auth: bool) -> str:
        port = free_port()
        config = {"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
                  "http": {"addr": f"127.0.0.1:{port}"}}  # fmt: skip
        if auth:
            (tmp_path / "htpasswd").write_text(HTPASSWD + "\n")
            config["auth"] = {"htpasswd": {"realm": "test", "path": str(tmp_path / "htpasswd")}}
        (tmp_path / "config.yml").write_text(json.dumps(config))  # JSON is YAML
        log = (tmp_path / "registry.log").open("w")
        processes.append(
            subprocess.Popen([program, "serve", str(tmp_path / "config.yml")], stdout=log, stderr=log)
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401: up, and asking for credentials
            except OSError:
                time.sleep(0.2)
        return f"127.0.0.1:{port}"

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def github_actions_env(registry: str) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_TOKEN": FAKE_TOKEN,
        "GITHUB_REPOSITORY": "Example/ML-Pipeline",
        "IMAGE_REGISTRY": registry,
    }


def test_in_github_actions_with_a_token_the_verified_image_is_pushed_with_its_digest(
    built, registry, tmp_path, docker_client
):
    host = registry(auth=False)
    run = run_job(
        REPO, tmp_path / "artifacts", "--base-image", os.environ["BASE_IMAGE"], **github_actions_env(host)
    )
    suffix = built.record["image"]["tag"].rpartition(":")[2]
    remote = f"{host}/example/ml-pipeline/ml-inference"
    try:
        assert run.result.returncode == 0, run.log[-3000:]
        image = run.record["image"]
        assert image["tag"] == f"{remote}:{suffix}"
        request = urllib.request.Request(
            f"http://{host}/v2/example/ml-pipeline/ml-inference/manifests/{suffix}",
            method="HEAD",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert image["digest"] == response.headers["Docker-Content-Digest"]
        assert run.outputs["image_digest"] == image["digest"] and run.outputs["image_tag"] == image["tag"]
        assert_token_nowhere(run)
    finally:
        docker_client.images.remove(f"{remote}:{suffix}")


def test_a_fresh_runner_pulls_the_image_pushed_for_the_same_content_instead_of_building(
    built, registry, tmp_path, docker_client
):
    host = registry(auth=False)
    env = github_actions_env(host)
    tag = built.record["image"]["tag"]
    repository, _, suffix = tag.rpartition(":")
    remote = f"{host}/example/ml-pipeline/ml-inference"
    pushed = run_job(REPO, tmp_path / "first", "--base-image", os.environ["BASE_IMAGE"], **env)
    assert pushed.result.returncode == 0, pushed.log[-3000:]
    image_id = built.record["image"]["image_id"]
    # Held under another name so that the other tests keep the image's build cache.
    docker_client.images.get(image_id).tag("ml-inference-kept-by-test", suffix)
    try:
        # A fresh runner, as far as the job can see: neither the content tag nor the pushed one is here.
        docker_client.images.remove(tag)
        docker_client.images.remove(f"{remote}:{suffix}")
        again = run_job(REPO, tmp_path / "again", "--base-image", os.environ["BASE_IMAGE"], **env)
        assert again.result.returncode == 0, again.log[-3000:]
        assert f"pull: {remote}:{suffix}" in again.log and "build skipped" in again.log
        assert not (again.output_dir / "image-build.log").exists()
        assert again.record["image"]["image_id"] == image_id
        assert_token_nowhere(again)
    finally:
        docker_client.images.get(image_id).tag(repository, suffix)
        for name in (f"{remote}:{suffix}", f"ml-inference-kept-by-test:{suffix}"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(name)


def test_a_token_the_registry_refuses_leaves_the_image_local_and_the_job_green(built, registry, tmp_path):
    host = registry(auth=True)
    run = run_job(
        REPO, tmp_path / "artifacts", "--base-image", os.environ["BASE_IMAGE"], **github_actions_env(host)
    )
    assert run.result.returncode == 0, run.log[-3000:]
    assert "refused the token" in run.log
    image = run.record["image"]
    assert (image["tag"], image["digest"]) == (built.record["image"]["tag"], None)
    assert_token_nowhere(run)


def assert_token_nowhere(run: JobRun) -> None:
    assert FAKE_TOKEN not in run.log
    for path in run.output_dir.rglob("*"):
        if path.is_file() and path.suffix != ".onnx":
            assert FAKE_TOKEN not in path.read_text(errors="replace"), path


# --- bad input ----------------------------------------------------------------------------------


def assert_failed_with(run: JobRun, cause: str) -> None:
    """Exit 1, one error line naming `cause`, and the partial record (with the model) kept."""
    assert run.result.returncode == 1, run.log[-3000:]
    errors = [line for line in run.log.splitlines() if "build: error:" in line]
    assert len(errors) == 1 and cause in errors[0], run.log[-3000:]
    record = run.record
    assert record["image"]["status"] == "failed"
    assert cause in record["image"]["reason"]
    assert record["model"]["name"] == "sklearn-iris"
    assert run.outputs["image_status"] == "failed"


def test_broken_dockerfile_fails_clearly_and_keeps_the_partial_record(tmp_path):
    base_image = require_base_image()
    repo = copy_repo(tmp_path / "repo")
    dockerfile = repo / SERVICE / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("\nUSER ", "\nUSERR "))
    run = run_job(repo, tmp_path / "artifacts", "--base-image", base_image)
    assert_failed_with(run, "unknown instruction: USERR")
    assert (run.output_dir / "image-build.log").exists()


def run_with_dockerfile_change(tmp_path: Path, old: str, new: str) -> JobRun:
    """The job on a copy of the repo whose Dockerfile has `old` replaced by `new`."""
    repo = copy_repo(tmp_path / "repo")
    dockerfile = repo / SERVICE / "Dockerfile"
    assert old in dockerfile.read_text()
    dockerfile.write_text(dockerfile.read_text().replace(old, new))
    return run_job(repo, tmp_path / "artifacts", "--base-image", os.environ["BASE_IMAGE"])


def assert_unverified_image_left_nothing(run: JobRun, docker_client) -> None:
    """No tag on the image that failed verification and none of its containers; then it is removed."""
    assert not docker_client.images.list(name=run.record["image"]["tag"])
    purpose = {"label": "io.ml-inference.purpose", "ancestor": run.record["image"]["image_id"]}
    assert not docker_client.containers.list(all=True, filters=purpose)  # other tests may be verifying
    docker_client.images.remove(run.record["image"]["image_id"])


def test_an_image_that_fails_verification_fails_the_job_and_is_never_tagged(built, tmp_path, docker_client):
    """Only ENV differs from the shared image, so every earlier layer comes from the cache."""
    run = run_with_dockerfile_change(
        tmp_path, "ML_INFERENCE_MODEL_DIR=/opt/model", "ML_INFERENCE_MODEL_DIR=/nowhere"
    )
    assert_failed_with(run, "failed verification: ready")
    checks = json.loads((run.output_dir / "verification.json").read_text())
    assert [check["passed"] for check in checks] == [True, False]  # non-root user, then ready
    assert (run.output_dir / "verify-container.log").read_text()  # the service said why it stopped
    assert_unverified_image_left_nothing(run, docker_client)


def test_an_image_whose_entrypoint_cannot_start_fails_verification_and_leaves_no_container(
    built, tmp_path, docker_client
):
    # Docker refuses to start it (an API error, not an exit): it was a traceback and a leftover container.
    run = run_with_dockerfile_change(
        tmp_path, 'ENTRYPOINT ["python", "-m"', 'ENTRYPOINT ["no-such-python", "-m"'
    )
    assert_failed_with(run, "failed verification: the container starts")
    assert "no-such-python" in run.record["image"]["reason"]
    assert_unverified_image_left_nothing(run, docker_client)


def test_missing_base_image_fails_clearly(tmp_path):
    require_base_image()
    run = run_job(REPO, tmp_path, "--base-image", "127.0.0.1:1/no-such-base:1")
    assert_failed_with(run, "base image '127.0.0.1:1/no-such-base:1' is not present and cannot be pulled")


def test_pin_without_a_wheel_fails_naming_it(tmp_path):
    base_image = require_base_image()
    repo = copy_repo(tmp_path / "repo")
    lock = repo / SERVICE / "requirements.lock"
    lock.write_text(re.sub(r"^numpy==\S+", "numpy==1.21.0", lock.read_text(), flags=re.M))  # no cp311 wheels
    run = run_job(repo, tmp_path / "artifacts", "--base-image", base_image)
    assert_failed_with(run, "no wheel of numpy==1.21.0")


# --- no engine ----------------------------------------------------------------------------------


def test_without_an_engine_the_job_succeeds_with_the_image_skipped(tmp_path):
    run = run_job(REPO, tmp_path, DOCKER_HOST=DEAD_ENGINE)
    assert run.result.returncode == 0, run.log[-3000:]
    notes = [line for line in run.log.splitlines() if "image: skipped (no engine)" in line]
    assert len(notes) == 1 and DEAD_ENGINE in notes[0]
    image = run.record["image"]
    assert (image["status"], image["reason"], image["tag"]) == ("skipped", "no engine", None)
    assert run.outputs["image_status"] == "skipped" and run.outputs["image_tag"] == ""
    assert (run.output_dir / "model" / "model.onnx").exists()


def test_require_image_makes_a_missing_engine_an_error(tmp_path):
    run = run_job(REPO, tmp_path, "--require-image", DOCKER_HOST=DEAD_ENGINE)
    assert_failed_with(run, "no Docker engine reachable")


def test_dry_run_plans_without_training_building_or_writing(tmp_path):
    run = run_job(REPO, tmp_path, PIPELINE_DRY_RUN="1", DOCKER_HOST=DEAD_ENGINE)
    assert run.result.returncode == 0, run.log[-3000:]
    assert run.result.stdout.startswith("build (dry run): train the model into")
    assert "skip the image (no Docker engine reachable" in run.result.stdout
    assert list(run.output_dir.iterdir()) == []
