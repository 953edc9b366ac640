"""The generated documentation pages agree with the code, and no variable goes undocumented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline import docgen, settings
from pipeline.checks import drift, load
from pipeline.targets.local import prometheus_release

ROOT = Path(__file__).resolve().parents[2]
#: Where the code names its environment variables: the pipeline, its entry points, the service, CI.
SOURCES = ("pipeline", "tasks.py", "noxfile.py", "scripts", "services/ml-inference/src", ".github/workflows")
#: A whole variable name; `PIPELINE_LOAD_*`, a family named in prose, is not one.
NAME = re.compile(
    r"(?<![A-Za-z0-9_])(?:(?:INVOKE_)?PIPELINE|ML_INFERENCE)_[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9_])"
)
TABLE_ROW = re.compile(r"^\| `([A-Z0-9_]+)` \|", re.MULTILINE)


def named_in_code(besides: Path | None = None) -> set[str]:
    """Every variable named in SOURCES, in every file but `besides`."""
    files = [
        p
        for entry in SOURCES
        for p in ((ROOT / entry).rglob("*") if (ROOT / entry).is_dir() else [ROOT / entry])
    ]
    names: set[str] = set()
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts and path != besides:
            names.update(NAME.findall(path.read_text(errors="replace")))
    return names


def configuration_table() -> set[str]:
    return set(TABLE_ROW.findall((ROOT / "docs" / "configuration.md").read_text()))


def test_generated_pages_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert docgen.main(["--check"]) == 0, capsys.readouterr().out


def test_every_variable_named_in_the_code_is_in_the_configuration_table() -> None:
    missing = named_in_code() - configuration_table()
    assert not missing, f"named in the code but not in docs/configuration.md: {sorted(missing)}"


def test_every_variable_in_the_configuration_table_is_defined_in_the_code() -> None:
    settings = "\n".join(p.read_text() for p in (ROOT / "services/ml-inference/src").rglob("*.py"))
    configured = re.search(r"ns\.configure\((.*?)\n\)", (ROOT / "tasks.py").read_text(), re.DOTALL)
    assert configured, "tasks.py has no ns.configure({...})"
    stale = set()
    for name in configuration_table():
        if name.startswith("ML_INFERENCE_"):
            defined = re.search(rf"^\s+{name.removeprefix('ML_INFERENCE_').lower()}:", settings, re.MULTILINE)
        elif name.startswith("INVOKE_PIPELINE_"):
            defined = f'"{name.removeprefix("INVOKE_PIPELINE_").lower()}":' in configured.group(1)
        else:  # declared in pipeline/settings.py, so it must be read or set somewhere else
            defined = name in named_in_code(besides=ROOT / "pipeline" / "settings.py")
        if not defined:
            stale.add(name)
    assert not stale, f"in docs/configuration.md but not in the code: {sorted(stale)}"


def test_an_undocumented_variable_stops_the_generator_naming_it_and_its_file(tmp_path: Path) -> None:
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "settings.py").write_text(
        'DEFAULTS: dict[str, str | None] = {\n    "PIPELINE_NEW_LIMIT": "5",\n}\n'
    )
    with pytest.raises(SystemExit, match=r"PIPELINE_NEW_LIMIT has no description.*pipeline/settings\.py"):
        docgen.pipeline_variables(tmp_path)


def test_a_variable_is_described_by_its_comment_and_gets_its_declared_default(tmp_path: Path) -> None:
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "settings.py").write_text(
        'DEFAULTS: dict[str, str | None] = {\n    #: Most requests at once.\n    "PIPELINE_LIMIT": "5",\n'
        '    #: Off unless set.\n    "PIPELINE_OFF": None,\n}\n'
    )
    assert docgen.pipeline_variables(tmp_path) == [
        docgen.Variable("PIPELINE_LIMIT", "`5`", "Most requests at once.", "pipeline.settings"),
        docgen.Variable("PIPELINE_OFF", "(unset)", "Off unless set.", "pipeline.settings"),
    ]


def test_a_setting_is_read_from_the_environment_else_its_declared_default() -> None:
    assert settings.get("PIPELINE_TARGET", {"PIPELINE_TARGET": "kind"}) == "kind"
    assert settings.get("PIPELINE_TARGET", {}) == "local"
    assert settings.get("PIPELINE_LOCAL_STATE_DIR", {}) == ""  # declared without a default


def test_the_defaults_the_code_keeps_itself_are_the_declared_ones() -> None:
    declared = {name: value or "" for name, value in settings.DEFAULTS.items()}
    assert load.LoadSettings.from_env(declared) == load.LoadSettings()
    assert declared["PIPELINE_LOAD_THRESHOLDS"] == load.DEFAULT_THRESHOLDS.relative_to(ROOT).as_posix()
    assert declared["PIPELINE_PROMETHEUS_RELEASE_URL"] == prometheus_release.DEFAULT_RELEASE_URL
    assert float(declared["PIPELINE_DEMO_HEAL_TIMEOUT"]) == drift.HEAL_TIMEOUT_SECONDS


def test_check_fails_with_a_diff_when_a_page_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(docgen, "PAGES", {"out/page.md": lambda root: "new line\n"})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "page.md").write_text("old line\n")
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 1
    assert "-old line\n+new line" in capsys.readouterr().out
    assert docgen.main(["--root", str(tmp_path)]) == 0
    assert (tmp_path / "out" / "page.md").read_text() == "new line\n"
