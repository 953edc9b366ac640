"""The house style of alerts, and a rule test on both sides of every alert's `for:` window."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from pipeline.gitops.checks.observability.layout import OBSERVABILITY, RULE_TESTS, RULES

RUNBOOK = OBSERVABILITY / "runbook.md"
ALERT_PREFIX = "MLInference"
SEVERITIES = ("critical", "warning", "info")


def rules(repo_root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted((repo_root / RULES).glob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        for group in data.get("groups", []):
            for rule in group.get("rules", []):
                yield path.relative_to(repo_root), rule


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def check_alert_style(repo_root: Path) -> list[str]:
    runbook = repo_root / RUNBOOK
    anchors = {
        _github_anchor(line.lstrip("#"))
        for line in (runbook.read_text().splitlines() if runbook.exists() else [])
        if line.startswith("#")
    }
    problems = []
    for path, rule in rules(repo_root):
        name = rule.get("alert")
        if name is None:
            continue
        where = f"{path}: alert {name}"
        if not re.fullmatch(rf"{ALERT_PREFIX}(?:[A-Z][a-z0-9]*)+", name):
            problems.append(f"{where}: name it in CamelCase starting with {ALERT_PREFIX}")
        severity = (rule.get("labels") or {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{where}: label severity is {severity!r}; use one of {', '.join(SEVERITIES)}")
        annotations = rule.get("annotations") or {}
        summary = annotations.get("summary", "")
        if not summary.endswith("."):
            problems.append(f"{where}: annotation summary must be a sentence ending in a period")
        if not annotations.get("description"):
            problems.append(f"{where}: add a description annotation")
        runbook_url = annotations.get("runbook_url", "")
        target, _, anchor = runbook_url.partition("#")
        if not target.endswith(str(RUNBOOK)) or anchor not in anchors:
            problems.append(
                f"{where}: runbook_url {runbook_url!r} must point at a section of {RUNBOOK} "
                f"(expected {RUNBOOK}#{_github_anchor(name)})"
            )
    return problems


def _duration_seconds(text: str | int | None, default: float) -> float:
    """Seconds in a Prometheus duration such as "1m30s"."""
    if text is None:
        return default
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", str(text))
    if not parts:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(number) * units[unit] for number, unit in parts)


def check_alert_tests(repo_root: Path) -> list[str]:
    """Every alert needs, in one test group, a quiet case within one evaluation of a firing case."""
    covered: set[str] = set()
    for path in sorted((repo_root / RULE_TESTS).glob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        interval = _duration_seconds(data.get("evaluation_interval"), 60)
        for test in data.get("tests", []):
            quiet: dict[str, list[float]] = {}
            firing: dict[str, list[float]] = {}
            for case in test.get("alert_rule_test", []):
                side = firing if case.get("exp_alerts") else quiet
                side.setdefault(case["alertname"], []).append(_duration_seconds(case["eval_time"], 0))
            for alert, fire_times in firing.items():
                if any(0 < fire - calm <= interval for fire in fire_times for calm in quiet.get(alert, [])):
                    covered.add(alert)
    return [
        f"{path}: alert {rule['alert']} has no test on both sides of its for: window; add to {RULE_TESTS}/ "
        f"a case expecting no alert one evaluation before a case expecting it to fire"
        for path, rule in rules(repo_root)
        if "alert" in rule and rule["alert"] not in covered
    ]
