"""PIPELINE_* variables: any common spelling of yes or no, finite numbers; anything else is refused."""

from __future__ import annotations

import pytest

from pipeline import settings
from pipeline.build.registry import PUSH_VARIABLE, push_repository
from pipeline.checks.load import DEFAULT_THRESHOLDS, Thresholds
from pipeline.context import RunContext

YES = ("1", "true", "True", "yes", "on", "YES")
NO = ("0", "false", "False", "no", "off", "")


@pytest.mark.parametrize("value", YES)
def test_a_dry_run_or_keep_is_asked_for_in_any_spelling_of_yes(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """`PIPELINE_DRY_RUN=true` must never run for real."""
    monkeypatch.setenv("PIPELINE_DRY_RUN", value)
    monkeypatch.setenv("PIPELINE_KEEP", value)
    context = RunContext.from_env()
    assert context.dry_run and context.keep


@pytest.mark.parametrize("value", NO)
def test_any_spelling_of_no_is_no(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PIPELINE_DRY_RUN", value)
    monkeypatch.setenv("PIPELINE_KEEP", value)
    context = RunContext.from_env()
    assert not context.dry_run and not context.keep


@pytest.mark.parametrize("variable", ["PIPELINE_DRY_RUN", "PIPELINE_KEEP"])
def test_a_yes_no_variable_that_is_neither_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "maybe")
    with pytest.raises(SystemExit, match=f"{variable}='maybe' is neither yes"):
        RunContext.from_env()


@pytest.mark.parametrize("value", [value for value in NO if value])
def test_any_spelling_of_no_stops_the_push(value: str) -> None:
    github = {"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "Owner/Repo"}
    assert push_repository({**github, PUSH_VARIABLE: value}, "ml-inference") is None


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e999"])
def test_a_number_that_is_not_finite_is_refused_naming_the_variable(value: str) -> None:
    environ = {"PIPELINE_DEMO_HEAL_TIMEOUT": value}
    with pytest.raises(ValueError, match=rf"PIPELINE_DEMO_HEAL_TIMEOUT='{value}' is not a finite number"):
        settings.number("PIPELINE_DEMO_HEAL_TIMEOUT", float, environ)
    assert settings.number("PIPELINE_DEMO_HEAL_TIMEOUT", float, {"PIPELINE_DEMO_HEAL_TIMEOUT": "2.5"}) == 2.5


@pytest.mark.parametrize("name", ["PIPELINE_TARGET", "PIPELINE_ARTIFACTS_DIR", "PIPELINE_NEEDS"])
def test_a_variable_set_empty_reads_as_its_default(name: str) -> None:
    # As an unset one, and as a yes/no one already does: CI often sets an unused input to "".
    assert settings.get(name, {name: ""}) == settings.DEFAULTS[name]


def test_an_empty_load_thresholds_variable_is_the_default_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.jobs import test as test_job

    monkeypatch.setenv("PIPELINE_LOAD_THRESHOLDS", "")
    _, thresholds = test_job.parse_args([])
    assert thresholds == Thresholds.load(DEFAULT_THRESHOLDS)
