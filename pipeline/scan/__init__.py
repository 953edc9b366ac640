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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

POLICY_FILE = Path(__file__).with_name("policy.toml")
SCAN_FILE = "scan.json"
RAW_DIR = "raw"

SEVERITIES = ("low", "medium", "high", "critical")
Verdict = Literal["passed", "failed", "skipped"]


class ScanError(Exception):
    """The scan could not be set up (a broken policy file); names the cause and the fix."""


def rank(severity: str) -> int:
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    where: str = ""
    #: Why this finding does not count against `fail_at` (empty: it counts).
    waived: str = ""


@dataclass
class Part:
    name: str
    title: str
    fail_at: str
    status: Verdict
    reason: str = ""
    findings: list[Finding] = field(default_factory=list)
    #: Raw tool outputs, relative to the scan's folder.
    raw: list[str] = field(default_factory=list)

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if not f.waived and rank(f.severity) >= rank(self.fail_at)]


@dataclass(frozen=True)
class Check:
    """A part about to run: its name, its title and the severity that fails it; it ends as one Part."""

    name: str
    title: str
    fail_at: str

    def judged(self, findings: list[Finding], raw: list[str] | None = None) -> Part:
        """It ran: failed when a finding reaches `fail_at`, else passed."""
        ordered = sorted(findings, key=lambda f: -rank(f.severity))
        part = Part(self.name, self.title, self.fail_at, "passed", findings=ordered, raw=raw or [])
        if part.failing:
            part.status = "failed"
            part.reason = f"{len(part.failing)} finding(s) at or above {self.fail_at}"
        return part

    def skipped(self, reason: str) -> Part:
        return Part(self.name, self.title, self.fail_at, "skipped", reason)

    def broken(self, reason: str) -> Part:
        """It had to run and could not: a failure, so the gate is never silently open."""
        return Part(self.name, self.title, self.fail_at, "failed", reason)


def summary(parts: list[Part], *, image: str | None, policy: Path) -> dict[str, Any]:
    """scan.json: the verdict, then every part with its status, reason, findings and raw files."""
    return {
        "status": "failed" if any(part.status == "failed" for part in parts) else "passed",
        "image": image,
        "policy": str(policy),
        "parts": [{**asdict(part), "failing": len(part.failing)} for part in parts],
    }


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
    return policy
