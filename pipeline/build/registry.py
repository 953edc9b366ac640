"""Pushing the verified image to GitHub's container registry, in GitHub Actions only.

A push happens only when the job runs in GitHub Actions (GITHUB_ACTIONS=true) with a token that may
write packages (GITHUB_TOKEN, from a job with `packages: write`); everywhere else the image stays in
the local engine, and the kind/minikube targets load it from there by its content tag. The token is
handed to the engine's login and never written anywhere.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping

import docker
import docker.errors

from pipeline import settings
from pipeline.build import BuildError

log = logging.getLogger(__name__)

DEFAULT_REGISTRY = "ghcr.io"


def push_repository(env: Mapping[str, str], image_name: str) -> str | None:
    """`ghcr.io/<owner>/<repo>/<image_name>` when this run may push, else None.

    IMAGE_REGISTRY overrides the registry host; GitHub sets GITHUB_REPOSITORY.
    """
    if env.get("GITHUB_ACTIONS") != "true" or not env.get("GITHUB_TOKEN") or not env.get("GITHUB_REPOSITORY"):
        return None
    if not settings.flag(PUSH_VARIABLE, env):
        return None
    registry = env.get("IMAGE_REGISTRY") or DEFAULT_REGISTRY
    return f"{registry}/{env['GITHUB_REPOSITORY'].lower()}/{image_name}"


PUSH_VARIABLE = "PIPELINE_PUSH_IMAGE"
#: Docker's tag grammar: what a branch name may keep (anything else becomes "-").
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def extra_tags(env: Mapping[str, str]) -> list[str]:
    """Tags pushed beside the content tag, to find an image by commit, branch or pull request.

    `sha-<short>`, then `pr-<n>` for a pull request or the branch name for a push. Nothing deploys
    them: deploy uses the content tag by digest.
    """
    tags = []
    if env.get("GITHUB_SHA"):
        tags.append(f"sha-{env['GITHUB_SHA'][:7]}")
    ref = env.get("GITHUB_REF", "")
    if ref.startswith("refs/pull/"):
        tags.append(f"pr-{ref.split('/')[2]}")
    elif ref.startswith("refs/heads/"):
        branch = _TAG_UNSAFE.sub("-", ref.removeprefix("refs/heads/")).lstrip(".-")[:128]
        if branch:
            tags.append(branch)
    return [tag for tag in tags if tag != "latest"]


#: How a registry says the token may not write (a fork's pull request gets a read-only token).
DENIED = ("denied", "unauthorized", "403", "401")


def push(
    client: docker.DockerClient, image_id: str, tag: str, env: Mapping[str, str]
) -> tuple[str, str] | None:
    """Push `image_id` as the content `tag` and the extra tags when this run may push.

    Returns the pushed reference and its digest (sha256:...), or None when the image stays local: this
    run may not push, or the registry refuses the token (a token without `packages: write` means "do
    not push", not a failed build). Any other push error fails the job.
    """
    name, _, suffix = tag.rpartition(":")
    repository = push_repository(env, name)
    if repository is None:
        log.info("push: not in GitHub Actions with a token, or a fork's pull request; the image stays local")
        return None
    also = extra_tags(env)
    registry = repository.split("/", 1)[0]
    digest = None
    try:
        _login(client, registry)
        image = client.images.get(image_id)
        for name in (suffix, *also):
            image.tag(repository, name)
            for line in client.images.push(repository, name, stream=True, decode=True):
                if "error" in line:
                    raise docker.errors.APIError(line["error"], explanation=line["error"])
                if name == suffix:
                    digest = line.get("aux", {}).get("Digest", digest)
    except docker.errors.APIError as error:
        message = str(error.explanation or error)
        if any(word in message.lower() for word in DENIED):
            log.warning("push: %s refused the token (%s); the image stays local", registry, message)
            return None
        raise BuildError(f"pushing {repository}:{suffix} failed: {message}") from error
    if digest is None:
        raise BuildError(f"the registry returned no digest for {repository}:{suffix}")
    log.info(
        "push: %s:%s (%s), also tagged %s", repository, suffix, digest, ", ".join(also) or "nothing else"
    )
    return f"{repository}:{suffix}", digest


def pull_pushed(client: docker.DockerClient, env: Mapping[str, str], tag: str) -> bool:
    """Pull the image a run pushed for this content and tag it `tag` here; whether there was one.

    A fresh runner has no local image, but the content tag names exactly what was built and verified,
    so a rerun of unchanged content reuses the pushed image (every layer) instead of building again.
    """
    name, _, suffix = tag.rpartition(":")
    repository = push_repository(env, name)
    if repository is None:
        return False
    try:
        _login(client, repository.split("/", 1)[0])
        pulled = client.images.pull(repository, tag=suffix)
    except docker.errors.APIError as error:  # not pushed yet (404), or not ours to read
        log.info("pull: %s:%s not reused (%s)", repository, suffix, error.explanation or error)
        return False
    pulled.tag(name, suffix)
    log.info("pull: %s:%s, pushed when this content was built and verified", repository, suffix)
    return True


def _login(client: docker.DockerClient, registry: str) -> None:
    """Log the engine in with the job's token; the engine keeps it, nothing is written here."""
    client.login(
        username=os.environ.get("GITHUB_ACTOR", "github-actions"),
        password=os.environ["GITHUB_TOKEN"],
        registry=registry,
    )
