"""Known vulnerabilities: pip-audit on the locked Python dependencies, Grype on the image's OS packages.

Both need a vulnerability database on the network. Where it cannot be reached the part is skipped
with the reason, never passed: pip-audit itself reports "No known vulnerabilities found" when it
could look up no dependency at all, so the part reads its per-dependency results, not its verdict.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pipeline.contracts import Finding, ScanPart
from pipeline.scan import SEVERITIES, Check

PIP_AUDIT_RAW = "pip-audit.json"
GRYPE_RAW = "grype.json"


def audit_python(lock_file: Path, policy: dict[str, Any], raw_dir: Path) -> ScanPart:
    check = Check(
        "python_vulnerabilities", "Python dependencies' vulnerabilities (pip-audit)", policy["fail_at"]
    )
    pip_audit = shutil.which("pip-audit")
    if pip_audit is None:
        return check.broken("pip-audit not found on PATH: install requirements/scan.txt")
    raw_dir.mkdir(parents=True, exist_ok=True)
    raw = raw_dir / PIP_AUDIT_RAW
    raw.unlink(missing_ok=True)
    # The lock holds the whole closure with hashes, so nothing is resolved or installed.
    command = [
        pip_audit, "--requirement", str(lock_file), "--disable-pip", "--no-deps", "--progress-spinner", "off",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            [*command, "--format", "json", "--output", str(raw)], capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        return check.skipped("pip-audit did not answer in 300 s: vulnerability service unreachable")
    try:
        dependencies = json.loads(raw.read_text())["dependencies"]
    except (OSError, ValueError, KeyError):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return check.skipped(f"pip-audit could not audit (exit {done.returncode}): {last}")
    unaudited = [dependency for dependency in dependencies if "skip_reason" in dependency]
    if dependencies and len(unaudited) == len(dependencies):
        return check.skipped(
            f"PyPI's vulnerability service answered for none of the {len(dependencies)} locked dependencies "
            f"(offline?), e.g. {unaudited[0]['skip_reason']}"
        )
    findings = [
        Finding("not-audited", policy["unaudited_severity"], dependency["skip_reason"], dependency["name"])
        for dependency in unaudited
    ]
    for dependency in dependencies:
        for vulnerability in dependency.get("vulns", []):
            fixed = ", ".join(vulnerability.get("fix_versions") or []) or "no fixed version yet"
            aliases = ", ".join(vulnerability.get("aliases") or [])
            message = f"{vulnerability['id']}{f' ({aliases})' if aliases else ''}: fixed in {fixed}"
            where = f"{dependency['name']}=={dependency.get('version', '')}"
            findings.append(Finding(vulnerability["id"], policy["severity"], message, where))
    return check.judged(findings, [f"{raw_dir.name}/{PIP_AUDIT_RAW}"])


def _grype_report(image_ref: str, image_id: str, raw: Path) -> dict[str, Any] | str:
    """Grype's JSON for the image: the workflow's (pinned) report, else grype on PATH; or why not."""
    if not raw.is_file():
        grype = shutil.which("grype")
        if grype is None:
            return "no OS vulnerability scanner installed (grype is not on PATH; the GitHub workflow runs it)"
        done = subprocess.run(
            [grype, image_ref, "--output", "json", "--file", str(raw)],
            capture_output=True,
            text=True,
            timeout=480,
        )
        if done.returncode != 0 or not raw.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return f"grype could not scan (exit {done.returncode}; its database needs the network): {last}"
    try:
        report = json.loads(raw.read_text())
    except ValueError as error:
        return f"{raw.name} is not JSON: {error}"
    scanned = ((report.get("source") or {}).get("target") or {}).get("imageID")
    if scanned != image_id:
        return f"{raw.name} is about image {scanned}, not the build's {image_id}: not used"
    return report


def audit_os(image_ref: str | None, image_id: str | None, policy: dict[str, Any], raw_dir: Path) -> ScanPart:
    check = Check("os_vulnerabilities", "OS packages' vulnerabilities (Grype)", policy["fail_at"])
    if not image_ref or not image_id:
        return check.skipped("the build made no image, so there are no OS packages to audit")
    report = _grype_report(image_ref, image_id, raw_dir / GRYPE_RAW)
    if isinstance(report, str):
        return check.skipped(report)
    findings = []
    for match in report.get("matches", []):
        vulnerability, artifact = match["vulnerability"], match["artifact"]
        fix = vulnerability.get("fix") or {}
        fixed = fix.get("state") == "fixed"
        fixed_in = f"fixed in {', '.join(fix.get('versions') or [])}" if fixed else "not fixed upstream yet"
        message = f"{vulnerability['id']}: {fixed_in}"
        waived = "not fixed upstream (policy: only_fixed)" if policy.get("only_fixed") and not fixed else ""
        # Grype's own severities are the policy's, plus negligible and unknown, which count as low.
        severity = str(vulnerability.get("severity")).lower()
        severity = severity if severity in SEVERITIES else "low"
        findings.append(
            Finding(
                vulnerability["id"], severity, message, f"{artifact['name']}=={artifact['version']}", waived
            )
        )
    return check.judged(findings, [f"{raw_dir.name}/{GRYPE_RAW}"])
