"""The image itself: the engine, the base image, the staged build context and the build.

The build context is staged in a temporary directory (see the Dockerfile's header) rather than
sent from the source tree: it holds exactly what the Dockerfile copies, including the host-built
wheelhouse and the trained model, so that the build is offline and the context is small. The
image is built untagged; the job tags it only after verification.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.images import Image

from pipeline.build import BuildError
from pipeline.build.wheelhouse import PROBE_SCRIPT, TargetPython, service_wheel

log = logging.getLogger(__name__)

#: The files of the service directory that the Dockerfile copies.
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "requirements.lock")
ENGINE_TIMEOUT_SECONDS = 5
BUILD_TIMEOUT_SECONDS = 900


def connect_engine() -> tuple[docker.DockerClient | None, str]:
    """A client of the engine that DOCKER_HOST (or the default socket) names, or None and why not."""
    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT_SECONDS)
        client.ping()
    except docker.errors.DockerException as error:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        return None, f"no Docker engine reachable at {where} ({_explain(error)[:200]})"
    client.api.timeout = BUILD_TIMEOUT_SECONDS
    return client, ""


def default_base_image(dockerfile: Path) -> str:
    """The Dockerfile's own `ARG BASE_IMAGE=` default, so that it is written down once."""
    match = re.search(r"^ARG BASE_IMAGE=(\S+)", dockerfile.read_text(), re.MULTILINE)
    if not match:
        raise BuildError(f"{dockerfile} declares no `ARG BASE_IMAGE=<default>`")
    return match.group(1)


def _image_id(image: Image) -> str:
    # The engine reports an Id for every image it has; the SDK's model types it as optional.
    assert image.id is not None, f"the Docker engine reported no Id for {image.tags}"
    return image.id


def ensure_base_image(client: docker.DockerClient, reference: str) -> str:
    """The id of the base image, pulled when it is not here; a clear error when it cannot be had."""
    try:
        return _image_id(client.images.get(reference))
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as error:
        raise BuildError(
            f"base image {reference!r} is not a valid image reference: {error.explanation}"
        ) from error
    log.info("base image %s is not here; pulling it", reference)
    try:
        return _image_id(client.images.pull(reference))
    except docker.errors.DockerException as error:
        raise BuildError(
            f"base image {reference!r} is not present and cannot be pulled ({_explain(error)}); "
            "make a local one with `BASE_IMAGE=$(sudo scripts/make-base-image.sh)` or pass --base-image"
        ) from error


def probe_python(client: docker.DockerClient, image: str) -> TargetPython:
    """Ask the base image's `python3` what it is, to download wheels it can install."""
    try:
        output = client.containers.run(
            image, ["python3", "-c", PROBE_SCRIPT], remove=True, network_disabled=True
        )
    except docker.errors.DockerException as error:
        raise BuildError(f"base image {image!r} has no working python3: {_explain(error)}") from error
    return TargetPython.from_probe(json.loads(output))


@contextmanager
def staged_context(service_dir: Path, wheelhouse: Path, model_dir: Path, scratch_dir: Path) -> Iterator[Path]:
    """A temporary build context holding exactly what the Dockerfile copies (removed afterwards).

    It is made in `scratch_dir`, next to the cached wheelhouse, so that wheels are hard-linked.
    """
    scratch_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=scratch_dir, prefix="context-"))
    try:
        for name in CONTEXT_FILES:
            shutil.copy2(service_dir / name, stage / name)
        (stage / "wheels").mkdir()
        for wheel in wheelhouse.glob("*.whl"):
            try:
                os.link(wheel, stage / "wheels" / wheel.name)
            except OSError:  # no hard link possible there
                shutil.copy2(wheel, stage / "wheels" / wheel.name)
        service_wheel(service_dir, stage / "dist")
        shutil.copytree(model_dir, stage / "model")
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def build(
    client: docker.DockerClient,
    context: Path,
    build_args: dict[str, str],
    log_file: Path,
    *,
    no_cache: bool = False,
) -> str:
    """Build the image from `context`; return its id.

    Progress (each Dockerfile step, and whether it came from the cache) goes to the job log; the
    full output to `log_file`, which is kept when the build fails.
    """
    image_id = None
    last_step = "before the first step"
    see_log = f"; whole output in {log_file}"
    with log_file.open("w") as full_log:
        try:
            for chunk in client.api.build(
                path=str(context),
                buildargs=build_args,
                nocache=no_cache,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            ):
                text = chunk.get("stream", "")
                full_log.write(text)
                if text.startswith("Step "):
                    last_step = text.strip()
                    log.info("  %s", last_step)
                elif "Using cache" in text:
                    log.info("    (cached)")
                if "error" in chunk:
                    full_log.write(chunk["error"] + "\n")
                    raise BuildError(
                        f"docker build failed at {last_step!r}: {chunk['error'].strip()}{see_log}"
                    )
                image_id = chunk.get("aux", {}).get("ID", image_id)
        except docker.errors.APIError as error:
            full_log.write(f"{error}\n")
            raise BuildError(f"docker build failed: {_explain(error)}{see_log}") from error
    if image_id is None:
        raise BuildError(f"docker build finished without an image id{see_log}")
    return image_id


def image_details(client: docker.DockerClient, reference: str) -> dict[str, Any]:
    """Id, size and configured user of an image, as the build record and verification want them."""
    attrs = client.images.get(reference).attrs
    return {"image_id": attrs["Id"], "size_bytes": attrs["Size"], "user": attrs["Config"].get("User") or ""}


def _explain(error: docker.errors.DockerException) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error).strip()
