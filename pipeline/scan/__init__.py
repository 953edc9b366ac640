"""The security scan's parts and the one file they write, `security-scan/scan.json`.

Each part checks one thing and ends in one of three states:

    passed   it ran, and no finding reached its `fail_at` (findings below it are still listed)
    failed   it ran and a finding reached its `fail_at`, or it had to run and could not
    skipped  it could not run for a reason outside the project (no image, no network, no scanner);
             the reason is one line, and a skipped part is never counted as a pass

The scan passes when no part failed. Thresholds live in `policy.toml` beside this file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.contracts import Finding, ScanPart, SecurityScan

POLICY_FILE = Path(__file__).with_name("policy.toml")
SCAN_FILE = "scan.json"
RAW_DIR = "raw"

SEVERITIES = ("low", "medium", "high", "critical")


class ScanError(Exception):
    """The scan could not be set up (a broken policy file); names the cause and the fix."""


def rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def counts(finding: Finding, fail_at: str) -> bool:
    """Whether `finding` counts against `fail_at`: not waived, and at least that severe."""
    return not finding.waived and rank(finding.severity) >= rank(fail_at)


@dataclass(frozen=True)
class Check:
    """A part about to run: its name, its title and the severity that fails it; it ends as one ScanPart."""

    name: str
    title: str
    fail_at: str

    def judged(self, findings: list[Finding], raw: list[str] | None = None) -> ScanPart:
        """It ran: failed when a finding reaches `fail_at`, else passed."""
        ordered = sorted(findings, key=lambda f: -rank(f.severity))
        failing = sum(counts(finding, self.fail_at) for finding in ordered)
        reason = f"{failing} finding(s) at or above {self.fail_at}" if failing else ""
        status = "failed" if failing else "passed"
        return self._part(status, reason, findings=ordered, raw=raw or [], failing=failing)

    def skipped(self, reason: str) -> ScanPart:
        return self._part("skipped", reason)

    def broken(self, reason: str) -> ScanPart:
        """It had to run and could not: a failure, so the gate is never silently open."""
        return self._part("failed", reason)

    def _part(self, status: str, reason: str, **judged: Any) -> ScanPart:
        return ScanPart(
            name=self.name, title=self.title, fail_at=self.fail_at, status=status, reason=reason, **judged
        )


def summary(parts: list[ScanPart], *, image: str | None, policy: Path) -> SecurityScan:
    """scan.json: the verdict, then every part with its status, reason, findings and raw files."""
    status = "failed" if any(part.status == "failed" for part in parts) else "passed"
    return SecurityScan(status=status, image=image, policy=str(policy), parts=parts)


def load_policy(path: Path = POLICY_FILE) -> dict[str, Any]:
    """The policy file, with every `fail_at` and `*severity` value checked against SEVERITIES."""
    try:
        policy = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ScanError(f"cannot read the scan policy {path}: {error}") from None

    def check(table: dict[str, Any], where: str) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                check(value, f"{where}.{key}")
            elif (key == "fail_at" or key.endswith("severity") or where.endswith(".severity")) and (
                value not in SEVERITIES
            ):
                raise ScanError(f"{path}: {where}.{key} = {value!r} is not one of {', '.join(SEVERITIES)}")

    check(policy, path.stem)
    for name, part in policy.items():
        if isinstance(part, dict) and "fail_at" not in part:
            raise ScanError(f"{path}: {path.stem}.{name} has no fail_at (one of {', '.join(SEVERITIES)})")
    return policy
