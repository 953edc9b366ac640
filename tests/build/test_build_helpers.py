"""The build job's pure parts, without an engine: content address, wheel targets, push decision, record."""

from __future__ import annotations

import shutil
from pathlib import Path

import psutil
import pytest

from pipeline.build import BuildError, wheelhouse
from pipeline.build.content import content_digest, content_tag
from pipeline.build.image import default_base_image
from pipeline.build.registry import push_repository
from pipeline.build.sbom import write_sbom
from pipeline.build.training import CARD_FILE, train_model, training_key
from pipeline.build.wheelhouse import TargetPython
from pipeline.jobs.build import BuildJob, new_record, source_url

REPO = Path(__file__).resolve().parents[2]
SERVICE = REPO / "services" / "ml-inference"
BASE_ID = "sha256:" + "1" * 64


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the service's image inputs and a fake model folder."""
    service = tmp_path / "service"
    shutil.copytree(SERVICE, service, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"onnx bytes")
    (model / "model-card.json").write_text("{}")
    return service, model


def test_content_digest_is_stable_for_the_same_inputs(inputs):
    service, model = inputs
    assert content_digest(service, model, BASE_ID) == content_digest(service, model, BASE_ID)


@pytest.mark.parametrize(
    "change",
    [
        lambda service, model: (service / "src" / "ml_inference" / "__init__.py").write_text("# changed\n"),
        lambda service, model: (service / "Dockerfile").write_text("FROM scratch\n"),
        lambda service, model: (service / "requirements.lock").write_text("numpy==2.0.0\n"),
        lambda service, model: (model / "model.onnx").write_bytes(b"other bytes"),
        lambda service, model: (service / "src" / "ml_inference" / "new_module.py").write_text(""),
        # The wheel takes hatchling's license files (LICEN[CS]E*, COPYING*, NOTICE*, AUTHORS*) and modes.
        lambda service, model: (service / "LICENSE").write_text("Apache License 2.0\n"),
        lambda service, model: (service / "src" / "ml_inference" / "server.py").chmod(0o755),
    ],
    ids=["source", "dockerfile", "lock", "model", "new-file", "license-file", "executable-bit"],
)
def test_content_digest_changes_with_what_goes_into_the_image(inputs, change):
    service, model = inputs
    before = content_digest(service, model, BASE_ID)
    change(service, model)
    assert content_digest(service, model, BASE_ID) != before


def test_content_digest_changes_with_the_base_image_but_not_with_byte_code_or_tests(inputs):
    service, model = inputs
    before = content_digest(service, model, BASE_ID)
    assert content_digest(service, model, "sha256:" + "2" * 64) != before
    cache = service / "src" / "ml_inference" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "app.cpython-311.pyc").write_bytes(b"byte code")
    (service / "tests").mkdir()
    (service / "tests" / "test_new.py").write_text("")
    assert content_digest(service, model, BASE_ID) == before


def test_training_key_changes_with_the_service_source_only_where_it_matters(inputs):
    service, _ = inputs
    before = training_key(service)
    assert training_key(service) == before
    (service / "Dockerfile").write_text("FROM scratch\n")  # does not shape the model
    assert training_key(service) == before
    (service / "src" / "ml_inference" / "train.py").write_text("# another training\n")
    assert training_key(service) != before


def test_content_tag_is_a_valid_short_docker_tag():
    assert content_tag("ml-inference", "ab" * 32) == "ml-inference:" + "ab" * 8


def test_target_python_lists_every_manylinux_tag_its_glibc_accepts():
    target = TargetPython.from_probe({"version": "3.11", "machine": "x86_64", "libc": ["glibc", "2.36"]})
    assert target.abi == "cp311"
    platforms = target.platforms
    assert platforms[0] == "manylinux_2_36_x86_64" and platforms[-1] == "manylinux1_x86_64"
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64"} <= set(platforms)
    assert "manylinux_2_37_x86_64" not in platforms


def test_target_python_refuses_a_musl_base():
    with pytest.raises(BuildError, match="only glibc"):
        TargetPython.from_probe({"version": "3.11", "machine": "x86_64", "libc": ["", ""]})


def test_default_base_image_is_read_from_the_dockerfile():
    assert default_base_image(SERVICE / "Dockerfile").startswith("python:3.11-slim")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "Org/Repo"}, None),  # no token: never push
        ({"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "Org/Repo"}, None),  # not in GitHub Actions
        (
            {"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "Org/Repo"},
            "ghcr.io/org/repo/app",
        ),
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_TOKEN": "t",
                "GITHUB_REPOSITORY": "o/r",
                "IMAGE_REGISTRY": "r.example",
            },
            "r.example/o/r/app",
        ),
    ],
)
def test_push_only_in_github_actions_with_a_token(env, expected):
    assert push_repository(env, "app") == expected


def test_a_fresh_record_and_outputs_have_the_contract_shape(tmp_path):
    record = new_record()
    assert set(record) == {"model", "image", "sbom"}
    assert set(record["image"]) == {
        "status", "reason", "tag", "image_id", "digest", "size_bytes",
        "build_seconds", "cache_hit", "base_image", "verified",
    }  # fmt: skip
    job = BuildJob(args=None, out_dir=tmp_path)  # type: ignore[arg-type]
    assert job.outputs() == {
        "model_version": "", "model_sha256": "", "image_status": "pending",
        "image_tag": "", "image_id": "", "image_digest": "",
    }  # fmt: skip


def test_source_label_comes_from_github_or_from_origin_without_credentials(monkeypatch):
    monkeypatch.setenv("GITHUB_REPOSITORY", "org/repo")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    assert source_url() == "https://github.example/org/repo"
    monkeypatch.delenv("GITHUB_REPOSITORY")
    monkeypatch.setattr(
        "pipeline.jobs.build._git", lambda *args: "https://user:s3cret@git.example:8443/org/repo.git"
    )
    assert source_url() == "https://git.example:8443/org/repo"
    monkeypatch.setattr("pipeline.jobs.build._git", lambda *args: "git@github.com:org/repo.git")
    assert source_url() is None


def test_retraining_keeps_the_cached_model_of_the_same_inputs(tmp_path):
    """--no-cache trains again; the identical model it makes must not cost the shared cache its entry."""
    service = Path(__file__).resolve().parents[2] / "services" / "ml-inference"
    cache = tmp_path / "cache"
    first = train_model(service, tmp_path / "first", cache)
    again = train_model(service, tmp_path / "again", cache, retrain=True)
    entry = cache / "model" / training_key(service)
    assert (entry / CARD_FILE).is_file(), "the cache lost its entry"
    assert again["artifact_sha256"] == first["artifact_sha256"]
    assert sorted(path.name for path in entry.parent.iterdir()) == [entry.name], "no partial copy left"


def test_pip_stopped_part_way_is_not_left_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Else, after a SIGTERM, pip writes on into the build context the job has just removed.
    pid_file = tmp_path / "pip.pid"
    pip = tmp_path / "python"
    pip.write_text(f"#!/bin/sh\necho $$ > {pid_file}\necho 'Collecting numpy'\nexec sleep 60\n")
    pip.chmod(0o755)
    monkeypatch.setattr(wheelhouse.sys, "executable", str(pip))

    def stopped(*args: object) -> None:
        raise KeyboardInterrupt  # what the build's SIGTERM handler raises, here while pip runs

    monkeypatch.setattr(wheelhouse.log, "info", stopped)
    with pytest.raises(KeyboardInterrupt):
        wheelhouse._run_pip(["wheel", "x"], "service wheel")
    assert not psutil.pid_exists(int(pid_file.read_text()))


class _ImagelessDocker:
    """A fake Docker client (named so: no image is needed to test the cache): asking it for a
    container means the SBOM is being made again rather than copied from the cache."""

    class containers:  # docker.DockerClient's attribute, lower case
        @staticmethod
        def create(image_id: str) -> None:
            raise RuntimeError(f"made again from {image_id}")


def test_a_cached_sbom_cut_short_is_made_again_not_reused(tmp_path: Path) -> None:
    image_id = "sha256:" + "2" * 64
    cached = tmp_path / "cache" / "sbom" / f"{'2' * 64}.cdx.json"
    cached.parent.mkdir(parents=True)
    cached.write_text('{"bomFormat": "CycloneDX", "compon')  # a copy stopped part-way
    out = tmp_path / "sbom.cdx.json"
    with pytest.raises(RuntimeError, match="made again"):
        write_sbom(_ImagelessDocker(), image_id, SERVICE / "pyproject.toml", out, tmp_path / "cache")  # type: ignore[arg-type]
    assert not out.exists()
