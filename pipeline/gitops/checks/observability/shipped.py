"""Generated files are current, and every rule file and dashboard is shipped to the cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.gitops.checks.observability.layout import DASHBOARDS, KUSTOMIZATION, OBSERVABILITY, RULES

DASHBOARD_GENERATOR = OBSERVABILITY / "grafana" / "dashboard.py"


def check_generated_dashboard(repo_root: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(repo_root / DASHBOARD_GENERATOR), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return [] if result.returncode == 0 else [(result.stdout + result.stderr).strip()]


def check_shipped_to_cluster(repo_root: Path) -> list[str]:
    """Every rule file and dashboard is in a configMapGenerator (kustomize has no globs)."""
    kustomization = yaml.safe_load((repo_root / KUSTOMIZATION).read_text())
    shipped = {
        (OBSERVABILITY / entry.rpartition("=")[2]).as_posix()
        for generator in kustomization.get("configMapGenerator", [])
        for entry in generator.get("files", [])
    }
    local = [*sorted((repo_root / RULES).glob("*.yml")), *sorted((repo_root / DASHBOARDS).glob("*.json"))]
    return [
        f"{KUSTOMIZATION}: {path.relative_to(repo_root).as_posix()} is not in any configMapGenerator, so "
        f"the cluster would not load it; list it there"
        for path in local
        if path.relative_to(repo_root).as_posix() not in shipped
    ]
