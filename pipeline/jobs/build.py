"""Build job: train the model, then build, verify, record and (in GitHub Actions) push its image.

    python -m pipeline.jobs.build [--base-image REF] [--require-image] [--no-cache]
    nox -s build -- [same options]

1. Train the model (the service's `train` step) into build-output/model/ with its model card
   (pipeline.build.training reuses an identical earlier model: training is deterministic), and
   gate it (pipeline.build.quality): held-out accuracy against a floor and the previous model.
2. Tag the image by content (pipeline.build.content); when that tag exists the image is already built
   and verified, and the build is skipped. A fresh GitHub runner first pulls the tag a run pushed.
3. Otherwise download a wheelhouse of the pinned runtime closure for the base image's Python, and
   build the image from services/ml-inference/Dockerfile, offline, with BASE_IMAGE passed through.
4. Verify it (pipeline.build.verify); only a verified image gets the content tag.
5. Write the SBOM of its Python packages and the build record.
6. Push it to GHCR in GitHub Actions when a token is present (pipeline.build.registry).
7. Publish model version, tag, id and digest as job outputs for deploy.

With no Docker engine the image steps are skipped with one line and the job succeeds (the local
target runs the service from its Python environment), unless --require-image. Any failure prints one
line naming the cause and exits 1; the build record written so far and the logs are kept.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import docker

from pipeline import settings
from pipeline.artifacts import BUILD_RECORD_FILE, job_dir, write_json_atomic, write_outputs
from pipeline.build import BuildError, image, quality, registry, sbom, verify
from pipeline.build.content import content_digest, content_tag
from pipeline.build.training import train_model
from pipeline.build.wheelhouse import wheelhouse
from pipeline.context import RunContext
from pipeline.contracts import BuildRecord, Image, encode
from pipeline.jobs._main import exit_with
from pipeline.timestamps import utc_now

log = logging.getLogger("build")

ROOT = Path(__file__).resolve().parents[2]
SERVICE_DIR = ROOT / "services" / "ml-inference"
IMAGE_REPOSITORY = "ml-inference"
SBOM_FILE = "sbom.cdx.json"


def cache_dir() -> Path:
    """Wheelhouses, models and SBOMs kept between runs (and between checkouts) on this machine."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ml-gitops-pipeline" / "build"


def new_record() -> dict[str, Any]:
    """A build record before any step: the image's fields at their contract defaults (status pending)."""
    return {"model": None, "image": encode(Image, Image()), "sbom": None}


def _git(*args: str) -> str | None:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def build_args(base_image: str, card: dict[str, Any], version: str) -> dict[str, str]:
    """The Dockerfile's ARGs: the base image and the OCI labels' values."""
    args = {
        "BASE_IMAGE": base_image,
        "REVISION": os.environ.get("GITHUB_SHA") or _git("rev-parse", "HEAD") or "unknown",
        "CREATED": utc_now("seconds"),
        "VERSION": version,
        "MODEL_NAME": card["name"],
        "MODEL_VERSION": card["version"],
    }
    source = source_url()
    if source:
        args["SOURCE"] = source
    return args


def source_url() -> str | None:
    """The repository's web address for the `source` label: GitHub's, else origin's without credentials."""
    if os.environ.get("GITHUB_REPOSITORY"):
        return (
            f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{os.environ['GITHUB_REPOSITORY']}"
        )
    origin = urlsplit(_git("remote", "get-url", "origin") or "")
    if origin.scheme not in ("http", "https") or not origin.hostname:
        return None  # no origin, or an ssh one: the Dockerfile's default stays
    host = origin.hostname + (f":{origin.port}" if origin.port else "")
    return urlunsplit((origin.scheme, host, origin.path.removesuffix(".git"), "", ""))


class BuildJob:
    """One run of the job: its arguments, its artifact folder, and the record it keeps up to date."""

    def __init__(self, args: argparse.Namespace, out_dir: Path) -> None:
        self.args = args
        self.out_dir = out_dir
        # Read before anything here is overwritten: the last build's model is the gate's baseline.
        self.previous_model = quality.previous_model(out_dir, BUILD_RECORD_FILE)
        # Then what else an earlier build left would pass for this one's (a failed build writes no
        # SBOM or verification); the record and the model are rewritten as this build goes.
        for earlier in sorted(out_dir.iterdir()) if out_dir.is_dir() else []:
            if earlier.is_dir() and earlier.name != "model":
                shutil.rmtree(earlier)
            elif earlier.is_file() and earlier.name != BUILD_RECORD_FILE:
                earlier.unlink()
        self.record = new_record()
        # Until the gate has judged this build's model: the baseline stays, and no model is deployed.
        self.record[quality.RECORD_KEY] = quality.pending(self.previous_model)
        self.image = self.record["image"]

    def save(self) -> None:
        write_json_atomic(self.out_dir / BUILD_RECORD_FILE, encode(BuildRecord, self.record))

    def outputs(self) -> dict[str, str]:
        model = self.record["model"] or {}
        return {
            "model_version": model.get("version") or "",
            "model_sha256": model.get("artifact_sha256") or "",
            "image_status": self.image["status"],
            "image_tag": self.image["tag"] or "",
            "image_id": self.image["image_id"] or "",
            "image_digest": self.image["digest"] or "",
        }

    def run(self) -> None:
        model_dir = self.out_dir / "model"
        card = train_model(SERVICE_DIR, model_dir, cache_dir(), retrain=self.args.no_cache)
        self.record["model"] = {
            key: card[key] for key in ("name", "version", "artifact_sha256", "test_accuracy")
        }
        log.info("train: %s %s, test accuracy %.3f", card["name"], card["version"], card["test_accuracy"])
        self.record[quality.RECORD_KEY] = quality.evaluate(card, self.previous_model, quality.load_config())
        self.save()
        quality.enforce(self.record[quality.RECORD_KEY])
        log.info("quality gate: passed (%s)", quality.describe(self.record[quality.RECORD_KEY]))
        self.build_image(model_dir, card)

    def build_image(self, model_dir: Path, card: dict[str, Any]) -> None:
        client, why_not = image.connect_engine()
        if client is None:
            if self.args.require_image:
                raise BuildError(
                    f"{why_not}; --require-image needs a running engine (start dockerd or set DOCKER_HOST)"
                )
            log.warning(
                "image: skipped (no engine): %s; the local target runs the service without an image", why_not
            )
            self.image.update(status="skipped", reason="no engine")
            return

        base = self.args.base_image or image.default_base_image(SERVICE_DIR / "Dockerfile")
        self.image["base_image"] = base
        started = time.monotonic()
        tag = content_tag(
            IMAGE_REPOSITORY, content_digest(SERVICE_DIR, model_dir, image.ensure_base_image(client, base))
        )
        self.image["tag"] = tag
        self.save()
        if not self.args.no_cache and not client.images.list(name=tag):  # a fresh runner: pushed before?
            registry.pull_pushed(client, os.environ, tag)
        if client.images.list(name=tag) and not self.args.no_cache:
            self.image.update(status="cached", cache_hit=True, verified=True, reason="content unchanged")
            image_id = image.image_details(client, tag)["image_id"]
            log.info("image: %s exists (same content, verified when built): build skipped", tag)
        else:
            image_id = self.build_and_verify(client, base, model_dir, card)
            repository, _, suffix = tag.rpartition(":")
            client.images.get(image_id).tag(repository, suffix)
        size = image.image_details(client, image_id)["size_bytes"]
        self.image.update(
            image_id=image_id, size_bytes=size, build_seconds=round(time.monotonic() - started, 2)
        )
        log.info("image: %s %s, %.0f MB, %.1fs", tag, image_id[:19], size / 1e6, self.image["build_seconds"])
        self.save()

        sbom.write_sbom(
            client, image_id, SERVICE_DIR / "pyproject.toml", self.out_dir / SBOM_FILE, cache_dir()
        )
        self.record["sbom"] = SBOM_FILE
        self.save()
        pushed = registry.push(client, image_id, tag, os.environ)
        if pushed is not None:
            self.image["tag"], self.image["digest"] = pushed
            self.save()

    def build_and_verify(
        self, client: docker.DockerClient, base: str, model_dir: Path, card: dict[str, Any]
    ) -> str:
        """Build the image offline from a staged context, verify it, and return its (untagged) id."""
        log.info("image: building on %s", base)
        wheels = wheelhouse(SERVICE_DIR / "requirements.lock", image.probe_python(client, base), cache_dir())
        with image.staged_context(SERVICE_DIR, wheels, model_dir, cache_dir()) as context:
            service_version = next((context / "dist").glob("*.whl")).name.split("-")[1]  # name-version-tags
            image_id = image.build(
                client,
                context,
                build_args(base, card, service_version),
                self.out_dir / "image-build.log",
                no_cache=self.args.no_cache,
            )
        self.image.update(status="built", image_id=image_id)
        self.save()
        verify.verify_image(client, image_id, self.out_dir)
        self.image["verified"] = True
        return image_id


def plan(args: argparse.Namespace, out_dir: Path) -> str:
    """What a run would do, for `invoke pipeline --dry-run`: nothing is trained, built or written."""
    client, why_not = image.connect_engine()
    base = args.base_image or image.default_base_image(SERVICE_DIR / "Dockerfile")
    if client is None:
        image_plan = f"skip the image ({why_not})" + (
            "; --require-image makes that an error" * args.require_image
        )
    else:
        repository = registry.push_repository(os.environ, IMAGE_REPOSITORY)
        image_plan = (
            f"tag the image by content on {base}, build unless that tag exists, verify, write the SBOM; "
            + (f"push it to {repository}" if repository else "no push (not in GitHub Actions with a token)")
        )
    return (
        f"build (dry run): train the model into {out_dir / 'model'} (or reuse an identical one); {image_plan}"
    )


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nox -s build --", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-image",
        default=os.environ.get("BASE_IMAGE") or None,
        help="base image for the Dockerfile (default: $BASE_IMAGE, else the Dockerfile's own default)",
    )
    parser.add_argument(
        "--require-image",
        action="store_true",
        help="fail when no Docker engine is reachable instead of skipping",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="build from scratch: train again, no layer cache, no skip when the content tag exists",
    )
    args = parser.parse_args(argv)
    try:
        settings.flag(registry.PUSH_VARIABLE)  # read again at the push; a bad value is refused up front
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stdout
    )

    context = RunContext.from_env()
    if context.dry_run:
        print(plan(args, job_dir("build", context)))
        return 0
    job = BuildJob(args, job_dir("build", context))
    job.save()
    # A runner's timeout sends SIGTERM: unwind like Ctrl-C, so that the verification container and
    # the staged context are removed and the record says what happened.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        job.run()
    except (BuildError, docker.errors.DockerException) as error:  # an engine error too: one line
        job.image.update(status="failed", reason=str(error))
        log.error("build: error: %s", error)
        return 1
    except KeyboardInterrupt:
        job.image.update(status="failed", reason="interrupted")
        log.error("build: error: interrupted; the verification container and the build context were removed")
        return 130
    finally:
        job.save()
        write_outputs("build", job.outputs(), context)
    log.info(
        "build: done: image %s%s",
        job.image["status"],
        f" ({job.image['reason']})" if job.image["reason"] else "",
    )
    return 0


if __name__ == "__main__":
    exit_with("build", main)
