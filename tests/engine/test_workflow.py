"""The committed GitHub workflow is the one generated from the graph, and agrees with it job by job."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from pipeline.artifacts import NEEDS_VARIABLE
from pipeline.context import DEMO_MODES, TARGETS
from pipeline.gitops import versions
from pipeline.graph import (
    IMAGE_RETENTION_DAYS,
    JOBS,
    JOBS_BY_NAME,
    LOG_RETENTION_DAYS,
    WORK,
    Job,
    upstream,
    with_report,
)
from pipeline.workflow import (
    CHECKS_PATH,
    DEFAULT_TARGETS,
    GRYPE_VERSION,
    PYTHON_VERSION,
    SETUP_ACTION_PATH,
    WORKFLOW_PATH,
    main,
    render,
    render_checks,
    render_setup_action,
)
from tests.helpers import require_program

REPO = Path(__file__).resolve().parents[2]
PINNED = re.compile(r"uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # v\d+(\.\d+)*$")


def kube_only(step: dict) -> bool:
    return "env.PIPELINE_TARGET" in step.get("if", "")


def moves_the_image(step: dict) -> bool:
    """A step that hands the build's image on (saved by build, loaded by the jobs that use it)."""
    return kube_only(step) or "build-image" in step.get("name", "") or "docker load" in step.get("run", "")


@pytest.fixture(scope="module")
def text() -> str:
    return (REPO / WORKFLOW_PATH).read_text()


@pytest.fixture(scope="module")
def workflow(text: str) -> dict:
    return yaml.safe_load(text)


def test_committed_workflow_is_the_generated_one(text: str) -> None:
    assert text == render(), "regenerate it: python -m pipeline.workflow"


def test_check_mode_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "pipeline.yml"
    stale.write_text(render().replace("timeout-minutes: 10", "timeout-minutes: 11", 1))
    assert main(["--check", "--path", str(stale)]) == 1
    stale.write_text(render())
    assert main(["--check", "--path", str(stale)]) == 0


def test_jobs_needs_conditions_timeouts_and_sessions_agree_with_the_graph(workflow: dict) -> None:
    jobs = workflow["jobs"]
    assert list(jobs) == [job.name for job in JOBS]
    for job in JOBS:
        spec = jobs[job.name]
        assert spec.get("needs", []) == list(job.needs), job.name
        # Conditions and timeouts are evaluated for every kind of run below; here, failure semantics.
        condition = spec.get("if", "")
        assert ("always()" in condition) == (job.condition == "always"), job.name
        if job.condition == "success" and job.demo_modes is None:
            assert "if" not in spec, job.name
        runs = [step["run"] for step in spec["steps"] if "run" in step]
        assert any(f"nox -s {job.session} " in run for run in runs), job.name
        uploads = [
            step
            for step in spec["steps"]
            if "upload-artifact" in step.get("uses", "") and not moves_the_image(step)
        ]
        assert [step["with"]["name"] for step in uploads] == [job.artifact, f"log-{job.name}"], job.name
        assert all(step["if"] == "always()" for step in uploads), job.name


def evaluate(expression: object, event: str, inputs: dict[str, str]) -> object:
    """A `${{ }}` expression of the kinds this workflow uses (&&, ||, ==, always(), contains(fromJSON()))
    evaluated as GitHub does: && and || give an operand, an input not given is ''."""
    text = str(expression).removeprefix("${{").removesuffix("}}").strip()
    assert re.fullmatch(r"[\w.()',\[\]\" =&|-]*", text), f"unexpected syntax in {text}"
    python = text.replace("&&", " and ").replace("||", " or ")
    names = {
        "inputs": SimpleNamespace(**{"demo_mode": "", "target": "", **inputs}),
        "github": SimpleNamespace(event_name=event),
        "always": lambda: True,
        "true": True,
        "fromJSON": json.loads,
        "contains": lambda haystack, needle: needle in haystack,
    }
    return eval(python, {"__builtins__": {}}, names)  # the committed workflow's own text


def runs_of_the_workflow() -> list[tuple[str, dict[str, str], str, str]]:
    """Every way a run starts: (event, inputs, its demo mode, its target); only a manual run has inputs."""
    runs = [(event, {}, DEMO_MODES[0], target) for event, target in DEFAULT_TARGETS.items()]
    for mode in DEMO_MODES:
        for target in TARGETS:
            runs.append(("workflow_dispatch", {"demo_mode": mode, "target": target}, mode, target))
    return runs


def test_every_jobs_condition_and_timeout_evaluate_to_the_graphs_in_every_run(workflow: dict) -> None:
    """Evaluated, not matched as text: an inverted condition or swapped timeouts in the generator fail."""
    for event, inputs, mode, target in runs_of_the_workflow():
        for job in JOBS:
            spec = workflow["jobs"][job.name]
            where = f"{job.name} on {event} {inputs}"
            # GitHub adds success() to a condition without a status function: the needs succeeded here.
            assert bool(evaluate(spec.get("if", "true"), event, inputs)) == job.runs_in(mode), where
            timeout = evaluate(spec["timeout-minutes"], event, inputs)
            assert timeout == math.ceil(job.timeout_for(target)), where


def test_the_jobs_variables_are_the_ones_the_local_runner_sets_with_the_same_values(workflow: dict) -> None:
    env = workflow["env"]
    assert set(env) == {
        "PIPELINE_TARGET",
        "PIPELINE_DEMO_MODE",
        "PIPELINE_ARTIFACTS_DIR",
        "PIPELINE_RUN_ID",
        "PIPELINE_DRY_RUN",
        "PIPELINE_KEEP",
    }, "the variables pipeline/runner.py's _environment sets for every job"
    assert (env["PIPELINE_ARTIFACTS_DIR"], env["PIPELINE_DRY_RUN"], env["PIPELINE_KEEP"]) == (
        "artifacts",
        "0",
        "0",
    )
    for event, inputs, mode, target in runs_of_the_workflow():
        assert evaluate(env["PIPELINE_DEMO_MODE"], event, inputs) == mode, (event, inputs)
        assert evaluate(env["PIPELINE_TARGET"], event, inputs) == target, (event, inputs)


def test_each_job_downloads_the_artifacts_of_all_its_needs_direct_or_not(workflow: dict) -> None:
    assert upstream(JOBS, "test") == ("unit", "build", "deploy")  # test's environment serves build's model
    for job in JOBS:
        steps = workflow["jobs"][job.name]["steps"]
        downloads = [
            step["with"]
            for step in steps
            if "download-artifact" in step.get("uses", "") and not moves_the_image(step)
        ]
        needed = [JOBS_BY_NAME[need].artifact for need in upstream(JOBS, job.name)]
        if job.condition == "always":  # by pattern: a skipped need uploaded nothing, and that is fine
            assert [d.get("pattern") for d in downloads] == [*needed, "log-*"]
        else:
            assert [d["name"] for d in downloads] == needed


def test_report_builds_the_run_record_from_the_needs_context(workflow: dict) -> None:
    steps = workflow["jobs"]["report"]["steps"]
    record_step = next(step for step in steps if step.get("run") == "python -m pipeline.record github")
    assert record_step["env"]["NEEDS_JSON"] == "${{ toJSON(needs) }}"
    assert steps.index(record_step) < next(
        i for i, s in enumerate(steps) if "nox -s report" in s.get("run", "")
    )


def test_triggers_and_inputs(workflow: dict) -> None:
    on = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert on["push"] == {"branches": ["main"]} and "pull_request" in on and "schedule" in on
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["demo_mode"]["options"] == list(DEMO_MODES)
    assert inputs["target"]["options"] == list(TARGETS)


#: What each event runs on (issue 11): pushes to the default branch, pull requests and the schedule
#: on kind; a manual run on local unless its `target` input picks kind or minikube.
EXPECTED_DEFAULT_TARGETS = {
    "push": "kind",
    "pull_request": "kind",
    "schedule": "kind",
    "workflow_dispatch": "local",
}


def target_for(workflow: dict, event: str, target_input: str = "") -> str:
    """Evaluate PIPELINE_TARGET's expression for `event`: `inputs.target || <event's literal> || ...`."""
    expression = workflow["env"]["PIPELINE_TARGET"].removeprefix("${{ ").removesuffix(" }}")
    first, *alternatives = expression.split(" || ")
    assert first == "inputs.target", expression
    if target_input:
        return target_input
    for alternative in alternatives:
        match = re.fullmatch(r"github\.event_name == '(\w+)' && '(\w+)'", alternative)
        assert match, alternative
        if match.group(1) == event:
            return match.group(2)
    raise AssertionError(f"no target for {event}: {expression}")


def test_the_default_target_per_event_is_the_one_table(workflow: dict) -> None:
    assert DEFAULT_TARGETS == EXPECTED_DEFAULT_TARGETS
    on = workflow[True]
    assert set(DEFAULT_TARGETS) == set(on), "every event that starts the pipeline has a default target"
    for event, target in EXPECTED_DEFAULT_TARGETS.items():
        assert target in TARGETS, event
        assert target_for(workflow, event) == target, event
    assert on["workflow_dispatch"]["inputs"]["target"]["default"] == DEFAULT_TARGETS["workflow_dispatch"]
    assert target_for(workflow, "workflow_dispatch", "minikube") == "minikube", (
        "a manual run picks its target"
    )


@pytest.mark.parametrize("path", [WORKFLOW_PATH, CHECKS_PATH])
def test_cancel_in_progress_for_pull_requests_only(path: Path) -> None:
    concurrency = yaml.safe_load((REPO / path).read_text())["concurrency"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    # A push's run has a group of its own (the run id): no later run cancels it or leaves it pending.
    assert concurrency["group"].endswith(
        "${{ github.event_name == 'pull_request' && github.ref || github.run_id }}"
    )


def test_build_outputs_reach_dependents_through_needs(workflow: dict) -> None:
    build = workflow["jobs"]["build"]
    assert build["outputs"] == {
        "image-tag": "${{ steps.nox.outputs.image_tag }}",
        "image-digest": "${{ steps.nox.outputs.image_digest }}",
    }
    assert any(step.get("id") == "nox" and "nox -s build" in step["run"] for step in build["steps"])
    for job in JOBS:
        env = workflow["jobs"][job.name].get("env", {})
        if job.needs:
            assert env[NEEDS_VARIABLE] == "${{ toJSON(needs) }}", job.name
        else:
            assert NEEDS_VARIABLE not in env, job.name
    scan = workflow["jobs"]["scan"]["steps"]
    grype = next(step for step in scan if step.get("uses", "").startswith("anchore/scan-action@"))
    assert grype["with"]["image"] == "${{ needs.build.outputs.image-tag }}"


def test_build_pushes_except_for_a_pull_request_from_a_fork(workflow: dict) -> None:
    nox = next(step for step in workflow["jobs"]["build"]["steps"] if step.get("id") == "nox")
    assert nox["env"]["PIPELINE_PUSH_IMAGE"] == (
        "${{ github.event_name != 'pull_request' || "
        "github.event.pull_request.head.repo.full_name == github.repository }}"
    )


def test_each_artifact_is_kept_as_long_as_the_graph_says(workflow: dict) -> None:
    kept = {}
    for spec in workflow["jobs"].values():
        for step in spec["steps"]:
            if "upload-artifact" in step.get("uses", ""):
                kept[step["with"]["name"]] = step["with"]["retention-days"]
    expected = {job.artifact: job.retention_days for job in JOBS if job.artifact}
    expected |= {f"log-{job.name}": LOG_RETENTION_DAYS for job in JOBS}
    expected["build-image"] = IMAGE_RETENTION_DAYS
    assert kept == expected
    report = JOBS_BY_NAME["report"].retention_days
    assert report > max(LOG_RETENTION_DAYS, IMAGE_RETENTION_DAYS)
    assert all(job.retention_days <= report for job in JOBS), "the report is kept longest"


def test_every_job_checks_out_then_runs_the_shared_setup_action(workflow: dict) -> None:
    for name, spec in [*workflow["jobs"].items(), *yaml.safe_load(render_checks())["jobs"].items()]:
        uses = [step.get("uses", "") for step in spec["steps"]]
        assert uses[0].startswith("actions/checkout@") and uses[1] == f"./{SETUP_ACTION_PATH.parent}", name
    assert (REPO / SETUP_ACTION_PATH).read_text() == render_setup_action()
    steps = yaml.safe_load(render_setup_action())["runs"]["steps"]
    assert steps[0]["with"]["cache"] == "pip" and steps[0]["with"]["python-version"] == PYTHON_VERSION
    assert steps[-1]["run"] == "python -m pip install -r requirements/tools.txt"


def test_the_local_target_gets_prometheus_and_the_report_a_chromium(workflow: dict) -> None:
    for job in JOBS:
        steps = workflow["jobs"][job.name]["steps"]
        names = [step.get("name", "") for step in steps]
        prometheus = [step for step in steps if step.get("name", "").startswith("Install Prometheus")]
        assert len(prometheus) == (1 if job.uses_target else 0), job.name
        if prometheus:
            assert prometheus[0]["if"] == "env.PIPELINE_TARGET == 'local'"
            assert "apt-get install" in prometheus[0]["run"] and "prometheus" in prometheus[0]["run"]
            assert steps.index(prometheus[0]) < names.index(f"nox -s {job.session}")
        assert any("Chromium" in name for name in names) == (job.name == "report"), job.name


def test_the_checks_workflow_runs_lint_manifests_and_tests_with_the_test_programs() -> None:
    checks = yaml.safe_load((REPO / CHECKS_PATH).read_text())
    assert (REPO / CHECKS_PATH).read_text() == render_checks()
    assert set(checks[True]) == {"push", "pull_request"} and checks[True]["push"] is None
    assert checks["permissions"] == {}
    assert list(checks["jobs"]) == ["lint", "manifests", "tests"]
    for name, spec in checks["jobs"].items():
        assert spec["permissions"] == {"contents": "read"}, name
        runs = [step.get("run", "") for step in spec["steps"]]
        assert runs[-1] == f"nox -s {name}"
        assert ("scripts/install-test-deps.sh" in runs) == (name == "tests"), name
    assert "scripts/install-test-deps.sh" in (REPO / ".ci/run").read_text(), "both install the same way"


@pytest.mark.parametrize("path", [WORKFLOW_PATH, CHECKS_PATH, SETUP_ACTION_PATH])
def test_least_privilege_and_pinned_actions(path: Path) -> None:
    text = (REPO / path).read_text()
    spec = yaml.safe_load(text)
    for name, job in spec.get("jobs", {}).items():
        permissions = job["permissions"]
        assert permissions["contents"] == "read", name
        assert ("pull-requests" in permissions) == (name == "report"), name
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes == {"report": {"pull-requests"}, "build": {"packages"}}.get(name, set()), name
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
    if path != SETUP_ACTION_PATH:
        assert spec["permissions"] == {}
    uses_lines = [line.strip().removeprefix("- ") for line in text.splitlines() if "uses:" in line]
    remote = [line for line in uses_lines if not line.startswith(f"uses: ./{SETUP_ACTION_PATH.parent} ")]
    assert remote and all(PINNED.fullmatch(line) for line in remote), remote


def test_job_inputs_reach_run_steps_only_through_env(text: str) -> None:
    run_blocks = re.findall(r"run: \|\n((?:          .*\n)+)", text)
    assert run_blocks and not any("${{" in block for block in run_blocks)


def test_workflow_passes_zizmor_actionlint_and_the_schema_offline(tmp_path: Path) -> None:
    """`nox -s lint`'s workflow half, in a throwaway env: the same pinned checkers as the lint session."""
    require_program("npm")
    done = subprocess.run(
        [sys.executable, "-m", "nox", "--envdir", str(tmp_path), "-s", "lint", "--", "--workflows-only"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "No findings to report" in done.stdout + done.stderr
    assert "actionlint: no findings" in done.stdout
    assert "ok -- validation done" in done.stdout


def test_a_job_added_to_the_graph_appears_in_the_generated_workflow() -> None:
    scan = Job("scan", needs=("build",), timeout_minutes=10, artifact="security-scan")
    workflow = yaml.safe_load(render(with_report((*WORK, scan))))
    assert workflow["jobs"]["scan"]["needs"] == ["build"]
    assert "scan" in workflow["jobs"]["report"]["needs"]
    assert any("nox -s scan " in step.get("run", "") for step in workflow["jobs"]["scan"]["steps"])


def test_jobs_on_a_target_install_the_pinned_kind_and_minikube_only_for_that_target(workflow: dict) -> None:
    pinned = {"kind": versions.KIND_VERSION, "minikube": versions.MINIKUBE_VERSION}
    for job in JOBS:
        steps = workflow["jobs"][job.name]["steps"]
        tools = ("Install kind", "Install minikube")
        installs = {step["if"]: step for step in steps if step.get("name", "").startswith(tools)}
        if not job.uses_target:
            assert installs == {}, job.name
            continue
        assert set(installs) == {f"env.PIPELINE_TARGET == '{target}'" for target in pinned}, job.name
        run_step = next(i for i, step in enumerate(steps) if f"nox -s {job.session}" in step.get("run", ""))
        for target, version in pinned.items():
            step = installs[f"env.PIPELINE_TARGET == '{target}'"]
            assert steps.index(step) < run_step
            assert step["env"] == {"VERSION": version}, (job.name, target)
            downloads = re.findall(r'curl -fsSL --retry 3 -o (\S+) "(https://[^"]+)"', step["run"])
            assert [name for name, _ in downloads] == [target, f"{target}.sha256"]
            assert all("${VERSION}" in url for _, url in downloads)
            assert f'{target}.sha256)  {target}" | sha256sum --check --strict' in step["run"]
            assert step["run"].index("sha256sum --check") < step["run"].index("sudo install")
    assert {job.name for job in JOBS if job.uses_target} == {"deploy", "test", "demo"}


def test_the_build_image_travels_to_the_scan_job_always_and_to_every_kube_job_on_kind_and_minikube(
    workflow: dict,
) -> None:
    """kind/minikube load the image from the runner's Docker, and scan inspects it: build saves it always."""
    kube = "env.PIPELINE_TARGET == 'kind' || env.PIPELINE_TARGET == 'minikube'"
    build = workflow["jobs"]["build"]["steps"]
    names = [step.get("name", "") for step in build]
    save = build[next(i for i, name in enumerate(names) if name.startswith("Save the image"))]
    upload = build[names.index("Upload build-image")]
    assert "if" not in save and "if" not in upload  # a job uses the image on every target (scan)
    assert names.index("nox -s build") < build.index(save) < build.index(upload)
    assert 'docker save --output "$RUNNER_TEMP/build-image/image.tar" "$IMAGE_TAG"' in save["run"]
    assert save["env"] == {"IMAGE_TAG": "${{ steps.nox.outputs.image_tag }}"}  # the build's job output
    assert upload["with"]["path"] == "${{ runner.temp }}/build-image/image.tar"
    uploaders = {name for name, spec in workflow["jobs"].items() for step in spec["steps"] if step == upload}
    assert uploaders == {"build"}
    for job in JOBS:
        steps = workflow["jobs"][job.name]["steps"]
        image_steps = [step for step in steps if moves_the_image(step)]
        if job.name == "build" or not (job.uses_target or job.uses_image):
            assert job.name == "build" or image_steps == [], job.name
            continue
        [download] = [step for step in image_steps if "download-artifact" in step.get("uses", "")]
        [load] = [step for step in image_steps if "docker load" in step.get("run", "")]
        assert download.get("if") == load.get("if") == (None if job.uses_image else kube), job.name
        assert download["with"] == {"name": "build-image", "path": "${{ runner.temp }}/build-image"}
        assert load["run"] == 'docker load --input "$RUNNER_TEMP/build-image/image.tar"'
        run_step = next(i for i, step in enumerate(steps) if f"nox -s {job.session}" in step.get("run", ""))
        assert steps.index(download) < steps.index(load) < run_step, job.name
    assert {job.name for job in JOBS if job.uses_image} == {"scan"}


def test_the_scan_job_runs_grype_pinned_on_the_builds_image_before_nox(workflow: dict) -> None:
    steps = workflow["jobs"]["scan"]["steps"]
    grype = next(step for step in steps if step.get("uses", "").startswith("anchore/scan-action@"))
    assert grype["with"]["grype-version"] == GRYPE_VERSION and grype["with"]["fail-build"] is False
    assert grype["with"]["output-file"] == "artifacts/security-scan/raw/grype.json"
    assert grype["if"] == "needs.build.outputs.image-tag != ''"
    run_step = next(i for i, step in enumerate(steps) if "nox -s scan" in step.get("run", ""))
    assert steps.index(grype) < run_step


def test_every_upload_comes_after_a_scrub_of_what_it_uploads(workflow: dict) -> None:
    for name, job in workflow["jobs"].items():
        steps = job["steps"]
        run_step = next(i for i, step in enumerate(steps) if step.get("name") == f"nox -s {name}")
        scrub = next(
            (
                i
                for i, step in enumerate(steps)
                if step.get("run", "").startswith("python -m pipeline.scrub ")
            ),
            None,
        )
        assert scrub is not None and scrub > run_step, f"{name}: no scrub step after the job"
        assert steps[scrub].get("if") == "always()", f"{name}: the scrub must run when the job failed too"
        scrubbed = steps[scrub]["run"]
        for index, step in enumerate(steps):
            path = (step.get("with") or {}).get("path", "")
            if "upload-artifact" in step.get("uses", "") and path.startswith("artifacts/"):
                assert index > scrub, f"{name}: {step['name']} uploads before the scrub"
                assert path in scrubbed, f"{name}: {path} is uploaded but not scrubbed"


def test_the_report_runs_when_a_best_effort_step_before_it_fails(workflow: dict) -> None:
    """A missing Chromium or a dropped GitHub API call must not cost the report, summary and comment."""
    for job in JOBS:
        if job.condition != "always":
            continue
        steps = workflow["jobs"][job.name]["steps"]
        run_step = next(i for i, step in enumerate(steps) if step.get("name") == f"nox -s {job.session}")
        best_effort = [step for step in steps[2:run_step] if "uses" not in step]  # after checkout and setup
        assert best_effort, job.name
        for step in best_effort:
            assert step.get("continue-on-error") is True, f"{job.name}: {step['name']}"


def test_each_job_keeps_a_uv_cache_of_its_own() -> None:
    """Jobs install different requirements; one shared key would keep only the first saver's wheels."""
    uv_cache = next(
        step for step in yaml.safe_load(render_setup_action())["runs"]["steps"]
        if step.get("with", {}).get("path") == "~/.cache/uv"
    )  # fmt: skip
    assert "${{ github.job }}" in uv_cache["with"]["key"]
    assert uv_cache["with"]["restore-keys"].endswith("${{ github.job }}-")
    pip_inputs = yaml.safe_load(render_setup_action())["runs"]["steps"][0]["with"]["cache-dependency-path"]
    assert "requirements/*.txt" in pip_inputs, "tools.txt includes contracts.txt: both key the pip cache"


def test_a_re_run_job_replaces_the_artifacts_of_its_earlier_attempt(workflow: dict) -> None:
    """upload-artifact refuses a name the run already has (409) unless told to overwrite."""
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "upload-artifact" in step.get("uses", ""):
                assert step["with"].get("overwrite") is True, f"{name}: {step['name']}"


def test_a_failed_base_image_build_fails_its_step(tmp_path: Path) -> None:
    checks = yaml.safe_load(render_checks())
    step = next(step for step in checks["jobs"]["tests"]["steps"] if "make-base-image" in step.get("run", ""))
    (tmp_path / "sudo").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "sudo").chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "GITHUB_ENV": str(tmp_path / "github-env")}
    # GitHub runs `shell: bash` steps as `bash --noprofile --norc -eo pipefail {0}`.
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], env=env, cwd=tmp_path
    )
    assert done.returncode != 0
    written = (tmp_path / "github-env").read_text() if (tmp_path / "github-env").exists() else ""
    assert "BASE_IMAGE=\n" not in written, "an empty BASE_IMAGE hides the failure from later steps"


def test_the_live_job_log_is_masked_as_it_streams(workflow: dict) -> None:
    """Actions shows a step's output live, to everyone who can read the run: it goes through the scrubber."""
    for name, job in workflow["jobs"].items():
        step = next(step for step in job["steps"] if step.get("name") == f"nox -s {name}")
        assert f"2>&1 | python -m pipeline.scrub - | tee artifacts/logs/{name}.log" in step["run"], name
        assert step["shell"] == "bash", f"{name}: bash runs with pipefail, so nox's failure fails the step"
