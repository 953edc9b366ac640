"""The nox sessions' set-up: what a warm session still installs."""

from __future__ import annotations

import functools
import importlib.util
import shutil
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import NoReturn

import pytest

from tests.helpers import REPO


@functools.cache
def load_noxfile(repo: Path) -> ModuleType:
    """The noxfile as a module, loaded once: nox registers its sessions at each load."""
    spec = importlib.util.spec_from_file_location("noxfile_under_test", repo / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RecordingSession:
    """Stands in for a nox session: records what it was asked to install or run (nothing is)."""

    def __init__(self, venv: Path, posargs: tuple[str, ...] = ()) -> None:
        self.virtualenv = SimpleNamespace(location=str(venv))
        self.posargs = list(posargs)
        self.env: dict[str, str] = {}
        self.installs: list[tuple[str, ...]] = []
        self.runs: list[tuple[str, ...]] = []

    def install(self, *args: str) -> None:
        self.installs.append(args)

    def run(self, *args: str) -> None:
        self.runs.append(args)

    def error(self, message: str) -> NoReturn:
        raise SessionError(message)


class SessionError(Exception):
    """What nox's session.error() raises, as a RecordingSession's."""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    service = tmp_path / "services" / "ml-inference"
    service.mkdir(parents=True)
    shutil.copy(REPO / "services/ml-inference/pyproject.toml", service / "pyproject.toml")
    (tmp_path / "venv").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_service_is_installed_again_only_when_its_pyproject_or_extras_change(project: Path) -> None:
    noxfile = load_noxfile(REPO)
    session = RecordingSession(project / "venv")

    def service_installs() -> list[tuple[str, ...]]:
        return [args for args in session.installs if args[0] == "-e"]

    noxfile._install(session, "deploy", service_extras="")
    noxfile._install(session, "deploy", service_extras="")
    assert service_installs() == [("-e", noxfile.SERVICE)]
    assert [args for args in session.installs if args[0] == "-r"] == [("-r", "requirements/deploy.txt")] * 2

    noxfile._install(session, "deploy", service_extras="train")
    assert service_installs()[-1] == ("-e", f"{noxfile.SERVICE}[train]")

    pyproject = project / "services/ml-inference/pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# a changed dependency\n")
    noxfile._install(session, "deploy", service_extras="train")
    assert len(service_installs()) == 3


def test_packages_are_installed_with_their_bytecode(project: Path) -> None:
    session = RecordingSession(project / "venv")
    load_noxfile(REPO)._install(session, "report")
    assert session.env["UV_COMPILE_BYTECODE"] == "1"


def test_an_unknown_benchmark_is_refused_before_anything_is_installed(project: Path) -> None:
    session = RecordingSession(project / "venv", posargs=("nosuch",))
    with pytest.raises(SessionError, match=r"Usage: nox -s bench -- build\|heal\|pipeline\|service"):
        load_noxfile(REPO).bench(session)
    assert session.installs == []


def test_a_benchmarks_options_are_handed_to_its_script(project: Path) -> None:
    session = RecordingSession(project / "venv", posargs=("heal", "--runs", "2"))
    load_noxfile(REPO).bench(session)
    assert session.runs == [("python", "scripts/bench_heal.py", "--runs", "2")]


def test_serve_answers_help_without_training_a_model_first(project: Path) -> None:
    session = RecordingSession(project / "venv", posargs=("--help",))
    load_noxfile(REPO).serve(session)
    assert [run for run in session.runs if "train" in run] == []
    assert session.runs[-1][-1] == "--help"
