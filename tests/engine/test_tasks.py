"""`invoke pipeline` and `invoke down`: documented flags, configured defaults, clear errors."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLAGS = (
    "--parallel", "--target", "--demo-mode", "--only", "--rerun-failed", "--max-parallel",
    "--artifacts-dir", "--keep", "--dry-run",
)  # fmt: skip


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_pipeline_and_down_are_listed() -> None:
    listed = invoke("--list").stdout
    assert "pipeline" in listed and "down" in listed


def test_the_pipeline_tasks_summary_names_every_job_of_the_graph() -> None:
    from pipeline.graph import JOBS

    summary = invoke("--help", "pipeline").stdout.split("Docstring:", 1)[1].strip().splitlines()[0]
    assert [name for name in re.findall(r"\w+", summary) if name in {job.name for job in JOBS}] == [
        job.name for job in JOBS
    ], summary


def test_every_pipeline_flag_is_documented() -> None:
    help_text = invoke("--help", "pipeline").stdout
    for flag in FLAGS:
        line = next((line for line in help_text.splitlines() if flag in line), "")
        assert len(line.split(flag, 1)[1].strip()) > 10, f"{flag} has no help"


def test_bad_choices_are_refused_before_anything_runs() -> None:
    done = invoke("pipeline", "--target", "moon")
    assert done.returncode == 2 and "--target 'moon' is not one of local, kind, minikube" in done.stderr
    done = invoke("pipeline", "--only", "nosuchjob")
    assert done.returncode != 0 and "unknown job(s) nosuchjob" in done.stderr
    done = invoke("pipeline", "--only", "report, nosuchjob")  # a space after the comma is no part of a name
    assert done.returncode != 0 and "unknown job(s) nosuchjob;" in done.stderr


def test_defaults_live_in_the_collection_configuration() -> None:
    sys.path.insert(0, str(REPO))
    try:
        import tasks
    finally:
        sys.path.remove(str(REPO))
    defaults = tasks.ns.configuration()["pipeline"]
    assert defaults["target"] == "local" and defaults["demo_mode"] == "full"
    assert defaults["artifacts_dir"] == "artifacts" and defaults["parallel"] == "false"


def dry_run_report(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "pipeline", "--only", "report", "--dry-run",
         "--artifacts-dir", str(tmp_path / "artifacts")],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, **variables},
    )  # fmt: skip


def test_the_jobs_target_variable_is_honoured_or_refused_clearly(tmp_path: Path) -> None:
    done = dry_run_report(tmp_path, PIPELINE_TARGET="moon")
    assert done.returncode == 2, done.stdout[-1000:] + done.stderr[-1000:]
    assert "PIPELINE_TARGET 'moon' is not one of local, kind, minikube" in done.stderr
    assert not (tmp_path / "artifacts").exists()  # refused before anything ran


@pytest.mark.parametrize(
    ("variable", "said"),
    [
        ("INVOKE_PIPELINE_TARGET", "INVOKE_PIPELINE_TARGET 'moon' is not one of local, kind, minikube"),
        ("INVOKE_PIPELINE_DEMO_MODE", "INVOKE_PIPELINE_DEMO_MODE 'moon' is not one of full, quick"),
    ],
)
def test_a_bad_configured_choice_names_the_variable_not_a_flag(variable: str, said: str) -> None:
    environ = {name: value for name, value in os.environ.items() if name != "PIPELINE_TARGET"}
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "pipeline"],
        cwd=REPO, capture_output=True, text=True, timeout=60, env={**environ, variable: "moon"},
    )  # fmt: skip
    assert done.returncode == 2 and said in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"flag": "-1"}, "--max-parallel '-1' is not a whole number of 0 or more"),
        ({"flag": "two"}, "--max-parallel 'two' is not a whole number of 0 or more"),
        ({"INVOKE_PIPELINE_MAX_PARALLEL": "abc"}, "INVOKE_PIPELINE_MAX_PARALLEL 'abc' is not a whole number"),
    ],
)
def test_a_bad_max_parallel_is_refused_before_anything_runs(
    tmp_path: Path, given: dict[str, str], said: str
) -> None:
    """Not a traceback from invoke's casts, nor a run that waits forever for a free slot (-1)."""
    flag = [f"--max-parallel={given.pop('flag')}"] if "flag" in given else []
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "pipeline", "--parallel", *flag, "--only", "report", "--dry-run",
         "--artifacts-dir", str(tmp_path / "artifacts")],
        cwd=REPO, capture_output=True, text=True, timeout=60, env={**os.environ, **given},
    )  # fmt: skip
    assert done.returncode == 2, done.stdout[-1000:] + done.stderr[-1000:]
    assert said in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "artifacts").exists()


def test_an_artifacts_dir_that_cannot_be_a_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a folder\n")
    done = invoke("pipeline", "--only", "report", "--artifacts-dir", str(taken))
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert f"cannot keep the artifacts in {taken}: File exists" in done.stderr


def test_a_configured_no_in_words_is_no(tmp_path: Path) -> None:
    """invoke's own cast takes every value but "0" and "" for true: PARALLEL=false ran in parallel."""
    done = dry_run_report(tmp_path, INVOKE_PIPELINE_PARALLEL="false", INVOKE_PIPELINE_KEEP="no")
    assert done.returncode == 0, done.stdout[-1000:] + done.stderr[-1000:]
    assert json.loads((tmp_path / "artifacts/pipeline-run.json").read_text())["parallel"] is False


#: Over a YAML false, invoke casts a variable to bool, where every word but "0" is true, "false" too.
OVER_BOOLEANS = {"INVOKE_PIPELINE_PARALLEL": "false", "INVOKE_PIPELINE_KEEP": "no"}


@pytest.mark.parametrize(
    ("yaml", "variables", "parallel"),
    [("parallel: false\n  keep: false", OVER_BOOLEANS, False), ("parallel: 1\n  keep: 0", {}, True)],
    ids=["variables over YAML booleans", "YAML numbers"],
)
def test_a_users_invoke_yaml_and_the_variables_over_it_read_as_written(
    tmp_path: Path, yaml: str, variables: dict[str, str], parallel: bool
) -> None:
    (tmp_path / ".invoke.yaml").write_text(f"pipeline:\n  {yaml}\n")  # the user's, under HOME
    done = dry_run_report(tmp_path, HOME=str(tmp_path), **variables)
    assert done.returncode == 0, done.stdout[-1000:] + done.stderr[-1000:]
    assert json.loads((tmp_path / "artifacts/pipeline-run.json").read_text())["parallel"] is parallel
    assert "left up" not in (tmp_path / "artifacts/logs/report.log").read_text()


def test_a_configured_yes_or_no_that_is_neither_is_refused(tmp_path: Path) -> None:
    done = dry_run_report(tmp_path, INVOKE_PIPELINE_KEEP="maybe")
    assert done.returncode == 2 and "INVOKE_PIPELINE_KEEP='maybe' is neither yes" in done.stderr, done.stderr
    assert not (tmp_path / "artifacts").exists()


#: What runs outside nox with only these packages to import: the tasks, the workflow's own steps
#: (`python -m pipeline.record`, `python -m pipeline.scrub`), then `invoke down` (the runner's teardown).
DOWN_WITH_ONLY = """\
import importlib.abc, sys
allowed = set(sys.argv[1].split(","))
class OnlyThese(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in allowed or top in ("pipeline", "tasks"):
            return None
        raise ModuleNotFoundError(f"No module named {top!r} where invoke runs", name=top)
sys.meta_path.insert(0, OnlyThese())
import pipeline.record, pipeline.scrub, tasks
print(tasks.get_target(sys.argv[2]).down_all())
"""


def task_runner_modules() -> set[str]:
    """The modules requirements/tools.txt (what the README's first command installs) provides."""
    wanted, files = set(), [REPO / "requirements" / "tools.txt"]
    while files:
        for line in files.pop().read_text().splitlines():
            if line.startswith("-r "):
                files.append(REPO / "requirements" / line.split()[1])
            elif line.strip() and not line.startswith("#"):
                wanted.add(re.split(r"[\[=<>]", line)[0].lower().replace("_", "-"))
    return {
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if any(distribution.lower().replace("_", "-") in wanted for distribution in distributions)
    }


@pytest.mark.parametrize("target", ["local", "kind", "minikube"])
def test_what_runs_outside_nox_needs_only_what_the_task_runners_have(tmp_path: Path, target: str) -> None:
    """Else the teardown after a kind run fails, and `invoke down` with it: the cluster stays up."""
    done = subprocess.run(
        [sys.executable, "-c", DOWN_WITH_ONLY, ",".join(sorted(task_runner_modules())), target],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        # No kind or minikube on PATH (nothing of anyone's is deleted) and a state root of its own.
        env={**os.environ, "PATH": str(tmp_path), "PIPELINE_LOCAL_STATE_DIR": str(tmp_path / "state")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "[]\n"


def test_the_target_flag_wins_over_the_variable_and_the_variable_over_the_configuration() -> None:
    sys.path.insert(0, str(REPO))
    try:
        import tasks
    finally:
        sys.path.remove(str(REPO))
    assert tasks.chosen_target(None, "local", {"PIPELINE_TARGET": "kind"}) == "kind"
    assert tasks.chosen_target("minikube", "local", {"PIPELINE_TARGET": "kind"}) == "minikube"
    assert tasks.chosen_target(None, "local", {}) == "local"


@pytest.mark.slow
def test_a_dry_run_leaves_the_last_real_runs_artifacts_alone(tmp_path: Path) -> None:
    """A dry run writes its plans beside the artifacts, never over them (nor over previous/)."""
    artifacts = tmp_path / "artifacts"
    kept = {
        "pipeline-run.json": '{"run_id": "real"}',
        "final-demo-report/report.html": "<p>the real run</p>",
        "test-results/load-summary.json": "{}",
    }
    for relative, text in kept.items():
        (artifacts / relative).parent.mkdir(parents=True, exist_ok=True)
        (artifacts / relative).write_text(text)
    environ = {**os.environ, "INVOKE_PIPELINE_ARTIFACTS_DIR": str(artifacts)}
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "pipeline", "--only", "report", "--dry-run"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=environ,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    left = sorted(str(path.relative_to(artifacts)) for path in artifacts.rglob("*") if path.is_file())
    assert left == sorted(kept)
    assert all((artifacts / relative).read_text() == text for relative, text in kept.items())
    dry_run = tmp_path / "artifacts-dry-run"
    assert (dry_run / "pipeline-run.json").is_file() and (dry_run / "final-demo-report/report.html").is_file()
    assert f"run record: {dry_run / 'pipeline-run.json'}" in done.stdout
