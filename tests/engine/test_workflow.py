"""The committed GitHub workflow is the one generated from the graph, and agrees with it job by job."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.context import DEMO_MODES, TARGETS
from pipeline.gitops import versions
from pipeline.graph import JOBS, JOBS_BY_NAME, WORK, Job, upstream, with_report
from pipeline.workflow import GRYPE_VERSION, WORKFLOW_PATH, main, render
from tests.conftest import require_program

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
    stale.write_text(render().replace("timeout-minutes: 15", "timeout-minutes: 16"))
    assert main(["--check", "--path", str(stale)]) == 1
    stale.write_text(render())
    assert main(["--check", "--path", str(stale)]) == 0


def test_jobs_needs_conditions_timeouts_and_sessions_agree_with_the_graph(workflow: dict) -> None:
    jobs = workflow["jobs"]
    assert list(jobs) == [job.name for job in JOBS]
    for job in JOBS:
        spec = jobs[job.name]
        assert spec.get("needs", []) == list(job.needs), job.name
        assert spec["timeout-minutes"] == math.ceil(job.timeout_minutes), job.name
        condition = spec.get("if", "")
        assert ("always()" in condition) == (job.condition == "always"), job.name
        if job.demo_modes is None:
            assert "demo_mode" not in condition, job.name
        else:
            assert "inputs.demo_mode" in condition and all(mode in condition for mode in job.demo_modes)
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


def test_triggers_inputs_and_concurrency(workflow: dict) -> None:
    on = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert on["push"] == {"branches": ["main"]} and "pull_request" in on and "schedule" in on
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["demo_mode"]["options"] == list(DEMO_MODES)
    assert inputs["target"]["options"] == list(TARGETS)
    assert workflow["concurrency"]["cancel-in-progress"] is True


def test_least_privilege_and_pinned_actions(workflow: dict, text: str) -> None:
    assert workflow["permissions"] == {}
    for name, spec in workflow["jobs"].items():
        permissions = spec["permissions"]
        assert permissions["contents"] == "read", name
        assert ("pull-requests" in permissions) == (name == "report"), name
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes == {"report": {"pull-requests"}, "build": {"packages"}}.get(name, set()), name
        for step in spec["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
    uses_lines = [line.strip().removeprefix("- ") for line in text.splitlines() if "uses:" in line]
    assert uses_lines and all(PINNED.fullmatch(line) for line in uses_lines), uses_lines


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
    assert 'docker save --output "$RUNNER_TEMP/build-image/image.tar" "$tag"' in save["run"]
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
    assert grype["with"]["image"] == "${{ steps.image.outputs.tag }}"
    run_step = next(i for i, step in enumerate(steps) if "nox -s scan" in step.get("run", ""))
    assert steps.index(grype) < run_step


def test_every_upload_comes_after_a_scrub_of_what_it_uploads(workflow: dict) -> None:
    for name, job in workflow["jobs"].items():
        steps = job["steps"]
        run_step = next(i for i, step in enumerate(steps) if step.get("name") == f"nox -s {name}")
        scrub = next(
            (i for i, step in enumerate(steps) if "python -m pipeline.scrub" in step.get("run", "")), None
        )
        assert scrub is not None and scrub > run_step, f"{name}: no scrub step after the job"
        assert steps[scrub].get("if") == "always()", f"{name}: the scrub must run when the job failed too"
        scrubbed = steps[scrub]["run"]
        for index, step in enumerate(steps):
            path = (step.get("with") or {}).get("path", "")
            if "upload-artifact" in step.get("uses", "") and path.startswith("artifacts/"):
                assert index > scrub, f"{name}: {step['name']} uploads before the scrub"
                assert path in scrubbed, f"{name}: {path} is uploaded but not scrubbed"
