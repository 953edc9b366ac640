"""hadolint on the service's Dockerfile, with the policy's ignored rules and severities."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pipeline.contracts import Finding, ScanPart
from pipeline.scan import Check

RAW_FILE = "hadolint.json"


def lint(dockerfile: Path, policy: dict[str, Any], raw_dir: Path) -> ScanPart:
    check = Check("dockerfile", "Dockerfile lint (hadolint)", policy["fail_at"])
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        return check.broken("hadolint not found on PATH: install requirements/scan.txt")
    ignored = [arg for rule in policy.get("ignore", {}) for arg in ("--ignore", rule)]
    done = subprocess.run(
        [hadolint, "--no-fail", "--no-color", "--format", "json", *ignored, str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        results = json.loads(done.stdout)
    except ValueError:
        return check.broken(f"hadolint gave no JSON: {(done.stderr or done.stdout).strip()[-300:]}")
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / RAW_FILE).write_text(json.dumps(results, indent=2) + "\n")
    findings = [
        Finding(
            rule=result["code"],
            severity=policy["severity"][result["level"]],
            message=result["message"],
            where=f"{dockerfile.name}:{result['line']}",
        )
        for result in results
    ]
    return check.judged(findings, [f"{raw_dir.name}/{RAW_FILE}"])
