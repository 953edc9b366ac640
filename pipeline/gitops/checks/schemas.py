"""Schema validation of rendered objects, offline.

Built-in kinds are checked with kubernetes-validate's strict schemas for the pinned Kubernetes
version (unknown fields are errors). Custom resources (Argo CD, Prometheus Operator) are checked
against CRD JSON schemas laid out like the public CRDs catalog, `{group}/{kind}_{version}.json`.
Where those live is a setting: PIPELINE_CRD_SCHEMA_LOCATION, a directory or a URL template,
defaulting to the catalog itself; CI points it at ../shared/schemas (no internet there).
"""

from __future__ import annotations

import json
import urllib.request
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

from pipeline import settings
from pipeline.gitops.render import REPO_ROOT, Manifest, name_of
from pipeline.gitops.versions import KUBERNETES_VERSION

CRD_SCHEMA_LOCATION_ENV = "PIPELINE_CRD_SCHEMA_LOCATION"


def crd_schema_location() -> str:
    """The configured location as a template with {group}, {kind} and {version}."""
    location = settings.get(CRD_SCHEMA_LOCATION_ENV)
    if "{" not in location:
        directory = Path(location)
        if not directory.is_absolute():
            directory = REPO_ROOT / directory
        location = str(directory / "{group}" / "{kind}_{version}.json")
    return location


@cache
def _load_schema(location: str) -> dict[str, Any]:
    if location.startswith(("https://", "http://")):
        with urllib.request.urlopen(location, timeout=30) as response:
            return json.load(response)
    return json.loads(Path(location).read_text())


def is_custom(manifest: Manifest) -> bool:
    """Whether the object's group is not a built-in Kubernetes API group."""
    group = manifest.get("apiVersion", "").rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def validate_builtin(manifest: Manifest) -> list[str]:
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = "/".join(str(part) for part in error.path) or "(root)"
        return [f"{name_of(manifest)}: {where}: {error.message} (Kubernetes {KUBERNETES_VERSION} schema)"]
    except kubernetes_validate.SchemaNotFoundError:
        return [
            f"{name_of(manifest)}: {manifest.get('apiVersion')} is not served "
            f"by Kubernetes {KUBERNETES_VERSION}"
        ]
    return []


def validate_custom(manifest: Manifest) -> list[str]:
    group, _, version = manifest.get("apiVersion", "").rpartition("/")
    location = crd_schema_location().format(
        group=group, kind=manifest.get("kind", "").lower(), version=version
    )
    try:
        schema = _load_schema(location)
    except (OSError, ValueError) as error:
        return [f"{name_of(manifest)}: no CRD schema at {location} ({error}); set {CRD_SCHEMA_LOCATION_ENV}"]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{name_of(manifest)}: {'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    ]


def validate(manifests: list[Manifest]) -> list[str]:
    """Schema problems of every object, built-in or custom."""
    problems: list[str] = []
    for manifest in manifests:
        problems += validate_custom(manifest) if is_custom(manifest) else validate_builtin(manifest)
    return problems
