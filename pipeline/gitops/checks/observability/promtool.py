"""`promtool check config`, `check rules` and `test rules` on observability/prometheus/."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pipeline.gitops.checks.observability.layout import PROMETHEUS

CONFIGS = (PROMETHEUS / "local.yml", PROMETHEUS / "kubernetes.yml")
#: The Debian build of Prometheus 2.x leaves Kubernetes discovery out; promtool then rejects it.
NO_KUBERNETES_SD = "field kubernetes_sd_configs not found"
KUBERNETES_SD_ROLES = ("node", "service", "pod", "endpoints", "endpointslice", "ingress")
PROMTOOL_TIMEOUT_SECONDS = 120


def _promtool(promtool: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_SECONDS,
        check=False,
    )


def _failure(what: str, result: subprocess.CompletedProcess[str]) -> str:
    output = (result.stdout + result.stderr).strip()
    return f"{what} failed:\n{output}"


def _without_kubernetes_sd(config: Path) -> tuple[dict[str, Any], list[str]]:
    """`config` with Kubernetes discovery swapped for a static target, and problems in what was cut.

    Lets a promtool built without Kubernetes discovery still check the rest of the file (rule
    files, relabelling, intervals); the discovery blocks themselves are checked here for their role.
    """
    data = yaml.safe_load(config.read_text())
    problems = []
    for job in data.get("scrape_configs", []):
        for sd in job.pop("kubernetes_sd_configs", None) or []:
            if sd.get("role") not in KUBERNETES_SD_ROLES:
                problems.append(
                    f"{config}: job {job.get('job_name')!r} has kubernetes_sd role {sd.get('role')!r}; "
                    f"use one of {', '.join(KUBERNETES_SD_ROLES)}"
                )
            job.setdefault("static_configs", []).append({"targets": ["kubernetes-sd.invalid:80"]})
    # Relative rule paths must still resolve against the original file's directory.
    data["rule_files"] = [str((config.parent / pattern).resolve()) for pattern in data.get("rule_files", [])]
    return data, problems


def check_configs(repo_root: Path, promtool: str) -> list[str]:
    problems = []
    for config in CONFIGS:
        result = _promtool(promtool, "check", "config", config, cwd=repo_root)
        if result.returncode != 0 and NO_KUBERNETES_SD in result.stdout + result.stderr:
            stripped, problems_cut = _without_kubernetes_sd(repo_root / config)
            problems += problems_cut
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / config.name
                copy.write_text(yaml.safe_dump(stripped))
                result = _promtool(promtool, "check", "config", copy, cwd=repo_root)
        if result.returncode != 0:
            problems.append(_failure(f"promtool check config {config}", result))
    return problems


def promtool_on_folder(repo_root: Path, promtool: str, folder: Path, what: str, *command: str) -> list[str]:
    """`promtool <command>` over every *.yml file of `folder`, which must hold at least one `what` file."""
    files = sorted((repo_root / folder).glob("*.yml"))
    if not files:
        return [f"{folder}/ has no *.yml {what} file"]
    result = _promtool(promtool, *command, *files, cwd=repo_root)
    what_ran = f"promtool {' '.join(command)} {folder}/*.yml"
    return [] if result.returncode == 0 else [_failure(what_ran, result)]
