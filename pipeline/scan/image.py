"""The image policy, through the Docker engine: non-root, no secrets, no package cache, a HEALTHCHECK.

Secret-looking values are found with the pipeline's one rule set (pipeline/scrub.py) in the image's
environment, labels and layer history; a finding shows the masked text, never the value. Package
caches are looked for in a container that is created, never started.
"""

from __future__ import annotations

import io
import tarfile
from typing import Any

import docker
import docker.errors
from docker.models.images import Image

from pipeline.contracts import Finding, ScanPart
from pipeline.scan import Check
from pipeline.scrub import MASK, is_secret_name, mask_text

ROOT_USERS = ("", "0", "root")
#: apt's own bookkeeping in a cache folder, present in an empty cache.
CACHE_BOOKKEEPING = ("lock", "partial")


def _secret_findings(image: Any, severity: str) -> list[Finding]:
    config = image.attrs.get("Config") or {}
    findings = []
    for entry in config.get("Env") or []:
        name, _, value = entry.partition("=")
        if is_secret_name(name) and value:
            findings.append(Finding("secret-env", severity, f"{name}={MASK} looks like a secret", "ENV"))
        elif mask_text(value) != value:
            findings.append(
                Finding("secret-env", severity, f"{name}={mask_text(value)} holds a secret", "ENV")
            )
    for key, value in (config.get("Labels") or {}).items():
        if (is_secret_name(key) and value) or mask_text(value) != value:
            findings.append(Finding("secret-label", severity, f"label {key} looks like a secret", "LABEL"))
    for layer in image.history():
        created_by = layer.get("CreatedBy") or ""
        if mask_text(created_by) != created_by:
            message = f"a build step holds a secret: {mask_text(created_by)[:200]}"
            findings.append(Finding("secret-history", severity, message, "history"))
    return findings


def _files_under(container: Any, path: str) -> list[str]:
    try:
        chunks, _ = container.get_archive(path)
    except docker.errors.NotFound:
        return []
    archive = io.BytesIO(b"".join(chunks))
    with tarfile.open(fileobj=archive) as tar:
        return [
            member.name
            for member in tar
            if member.isfile() and not set(member.name.split("/")) & set(CACHE_BOOKKEEPING)
        ]


def _cache_findings(
    client: docker.DockerClient, image: Image, paths: list[str], severity: str
) -> list[Finding]:
    container = client.containers.create(image, entrypoint=["true"])
    try:
        findings = []
        for path in paths:
            files = _files_under(container, path)
            if files:
                message = f"package manager cache left in the image: {len(files)} file(s), e.g. {files[0]}"
                findings.append(Finding("package-cache", severity, message, path))
        return findings
    finally:
        container.remove(force=True)


def check_image(image_ref: str | None, policy: dict[str, Any], image_id: str | None = None) -> ScanPart:
    """The policy on the build's image: by its id when the build recorded one (a tag can move since)."""
    check = Check("image", "Image policy", policy["fail_at"])
    if not image_ref:
        return check.skipped("the build made no image, so there is none to inspect")
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as error:
        return check.skipped(f"no Docker engine reachable to inspect {image_ref}: {error}")
    try:
        image = client.images.get(image_id or image_ref)
    except docker.errors.ImageNotFound:
        return check.broken(f"the build's image {image_ref} is not in this engine")
    config = image.attrs.get("Config") or {}
    findings = []
    user = config.get("User") or ""
    if user.split(":")[0] in ROOT_USERS:
        message = f"runs as root (USER {user!r}): set a numeric non-root USER"
        findings.append(Finding("root-user", policy["root_user_severity"], message, "USER"))
    healthcheck = (config.get("Healthcheck") or {}).get("Test") or ["NONE"]
    if healthcheck[0] == "NONE":
        findings.append(
            Finding("no-healthcheck", policy["no_healthcheck_severity"], "no HEALTHCHECK", "HEALTHCHECK")
        )
    findings += _secret_findings(image, policy["secret_severity"])
    findings += _cache_findings(client, image, policy["cache_paths"], policy["package_cache_severity"])
    return check.judged(findings)
