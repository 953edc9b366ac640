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

from pipeline.context import DEMO_MODES, TARGETS
from pipeline.gitops.versions import KIND_VERSION, MINIKUBE_VERSION
from pipeline.graph import JOBS, Job, upstream

WORKFLOW_PATH = Path(".github/workflows/pipeline.yml")
RUNNER = "ubuntu-latest"
PYTHON_VERSION = "3.11"
#: Pushes, pull requests and the weekly scheduled run use the first of each (the local defaults).
DEFAULT_TARGET = TARGETS[0]
DEFAULT_DEMO_MODE = DEMO_MODES[0]

ACTIONS = {
    "checkout": "actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2",
    "setup-python": "actions/setup-python@ece7cb06caefa5fff74198d8649806c4678c61a1 # v6.3.0",
    "upload-artifact": "actions/upload-artifact@043fb46d1a93c77aae656e7c1c64a875d1fc6a0a # v7.0.1",
    "download-artifact": "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c # v8.0.1",
    # Grype for the image's OS packages (the scan job reads its JSON report; pipeline/scan/).
    "scan-action": "anchore/scan-action@e1165082ffb1fe366ebaf02d8526e7c4989ea9d2 # v7.4.0",
}
#: The Grype release the scan action installs (its own default at v7.4.0, pinned here on purpose).
GRYPE_VERSION = "v0.110.0"

#: The artifact a job's log travels in; the report downloads them all into `artifacts/logs/`.
LOG_ARTIFACT_PREFIX = "log-"

#: Per target: the CLI, its pinned version (pipeline/gitops/versions.py), the official
#: release binary for the runner (ubuntu-latest: linux/amd64) and the sha256 file published with it
#: (kind: "<sha256>  <file>", minikube: "<sha256>"; the first field is the checksum either way).
TARGET_TOOLS = {
    "kind": (
        "kind",
        KIND_VERSION,
        "https://kind.sigs.k8s.io/dl/${VERSION}/kind-linux-amd64",
        "https://kind.sigs.k8s.io/dl/${VERSION}/kind-linux-amd64.sha256sum",
    ),
    "minikube": (
        "minikube",
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


def image_condition(jobs: tuple[Job, ...]) -> str | None:
    """When the build hands its image on: always if a job inspects it, else for the Kubernetes targets."""
    return None if any(job.uses_image for job in jobs) else KUBE_TARGETS


def _if(condition: str | None) -> str:
    return f"\n        if: {condition}" if condition else ""


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
        default: {DEFAULT_TARGET}
  schedule:
    - cron: "23 4 * * 1"

concurrency:
  group: ${{{{ github.workflow }}}}-${{{{ github.ref }}}}
  cancel-in-progress: true

permissions: {{}}

env:
  PIPELINE_TARGET: ${{{{ inputs.target || '{DEFAULT_TARGET}' }}}}
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


def log_artifact(job: Job) -> str:
    return f"{LOG_ARTIFACT_PREFIX}{job.name}"


def _setup_steps(job: Job) -> str:
    steps = f"""\
      - uses: {ACTIONS["checkout"]}
        with:
          persist-credentials: false
      - uses: {ACTIONS["setup-python"]}
        with:
          python-version: "{PYTHON_VERSION}"
      - name: Install the pinned nox
        run: python -m pip install -r requirements/tools.txt
"""
    if job.uses_target:
        steps += "".join(_install_tool_step(target, *tool) for target, tool in TARGET_TOOLS.items())
    if job.uses_image:
        steps += _load_image_steps(None, "")
    elif job.uses_target:
        steps += _load_image_steps(KUBE_TARGETS, f" (targets {', '.join(TARGET_TOOLS)} only)")
    return steps


def _load_image_steps(condition: str | None, note: str) -> str:
    return f"""\
      - name: Download {IMAGE_ARTIFACT}{note}{_if(condition)}
        uses: {ACTIONS["download-artifact"]}
        with:
          name: {IMAGE_ARTIFACT}
          path: ${{{{ runner.temp }}}}/{IMAGE_ARTIFACT}
      - name: Load the build's image into Docker{note}{_if(condition)}
        run: docker load --input "$RUNNER_TEMP/{IMAGE_ARTIFACT}/image.tar"
"""


def _vulnerability_scan_steps(job: Job, image_artifact: str | None) -> str:
    """Grype on the build's image, pinned (action by SHA, Grype by version); the job judges its report."""
    return f"""\
      - name: Read the build's image tag
        id: image
        shell: bash
        run: |
          python -c 'import json, sys; print("tag=" + json.load(open(sys.argv[1])).get("image_tag", ""))' \\
            artifacts/{image_artifact}/outputs.json >> "$GITHUB_OUTPUT"
      - name: Grype {GRYPE_VERSION} on the image's OS packages (nox -s {job.session} applies the policy)
        if: steps.image.outputs.tag != ''
        uses: {ACTIONS["scan-action"]}
        with:
          image: ${{{{ steps.image.outputs.tag }}}}
          grype-version: {GRYPE_VERSION}
          fail-build: false
          output-format: json
          output-file: {GRYPE_REPORT}
"""


def _install_tool_step(target: str, tool: str, version: str, binary_url: str, checksum_url: str) -> str:
    """Install `tool` at `version` when the run's target is `target`; a checksum mismatch fails the job."""
    return f"""\
      - name: Install {tool} {version} (target {target} only)
        if: env.PIPELINE_TARGET == '{target}'
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
    jobs_by_name = {other.name: other for other in jobs}
    artifacts = [
        jobs_by_name[need].artifact for need in upstream(jobs, job.name) if jobs_by_name[need].artifact
    ]
    if job.condition != "always":
        return "".join(
            f"""\
      - name: Download {artifact}
        uses: {ACTIONS["download-artifact"]}
        with:
          name: {artifact}
          path: artifacts/{artifact}
"""
            for artifact in artifacts
        )
    # Needs may have failed or been skipped and uploaded nothing: a `name` that does not exist
    # fails the step, a `pattern` that matches nothing downloads nothing.
    steps = "".join(
        f"""\
      - name: Download {artifact} if it was uploaded
        uses: {ACTIONS["download-artifact"]}
        with:
          pattern: {artifact}
          path: artifacts/{artifact}
          merge-multiple: true
"""
        for artifact in artifacts
    )
    return (
        steps
        + f"""\
      - name: Download every job's log
        uses: {ACTIONS["download-artifact"]}
        with:
          pattern: {LOG_ARTIFACT_PREFIX}*
          path: artifacts/logs
          merge-multiple: true
      - name: Download the last successful run's load figures (best effort)
        run: python -m pipeline.record github-previous
        env:
          GITHUB_TOKEN: ${{{{ github.token }}}}
      - name: Write pipeline-run.json from the needs context
        run: python -m pipeline.record github
        env:
          NEEDS_JSON: ${{{{ toJSON(needs) }}}}
          GITHUB_TOKEN: ${{{{ github.token }}}}
"""
    )


def _run_and_upload_steps(job: Job, jobs: tuple[Job, ...]) -> str:
    token = "\n        env:\n          GITHUB_TOKEN: ${{ github.token }}" if job.permissions else ""
    image_artifact = next(other.artifact for other in jobs if other.name == IMAGE_JOB)
    steps = _vulnerability_scan_steps(job, image_artifact) if job.name == SCAN_JOB else ""
    steps += f"""\
      - name: nox -s {job.session}
        shell: bash
        run: |
          mkdir -p artifacts/logs
          nox -s {job.session} 2>&1 | tee artifacts/logs/{job.name}.log{token}
"""
    if job.name == IMAGE_JOB:
        condition = image_condition(jobs)
        kube_only = f"the Kubernetes jobs (targets {', '.join(TARGET_TOOLS)} only)"
        for_whom = kube_only if condition else "later jobs"
        steps += f"""\
      - name: Save the image for {for_whom}{_if(condition)}
        shell: bash
        run: |
          tag=$(python -c 'import json, sys; print(json.load(open(sys.argv[1])).get("image_tag", ""))' \\
            artifacts/{job.artifact}/outputs.json)
          if [ -z "$tag" ]; then echo "{job.name} made no image; later jobs need one" >&2; exit 1; fi
          mkdir -p "$RUNNER_TEMP/{IMAGE_ARTIFACT}"
          docker save --output "$RUNNER_TEMP/{IMAGE_ARTIFACT}/image.tar" "$tag"
      - name: Upload {IMAGE_ARTIFACT}{_if(condition)}
        uses: {ACTIONS["upload-artifact"]}
        with:
          name: {IMAGE_ARTIFACT}
          path: ${{{{ runner.temp }}}}/{IMAGE_ARTIFACT}/image.tar
          retention-days: 1
          if-no-files-found: error
"""
    uploads = [(job.artifact, f"artifacts/{job.artifact}/")] if job.artifact else []
    uploads.append((log_artifact(job), f"artifacts/logs/{job.name}.log"))
    # Nothing leaves the runner unmasked: the same scrub `invoke pipeline` applies when a job ends.
    steps += f"""\
      - name: Mask secrets in what this job uploads
        if: always()
        run: python -m pipeline.scrub {" ".join(path for _, path in uploads)}
"""
    for name, path in uploads:
        steps += f"""\
      - name: Upload {name}
        if: always()
        uses: {ACTIONS["upload-artifact"]}
        with:
          name: {name}
          path: {path}
          if-no-files-found: ignore
"""
    return steps


def render_job(job: Job, jobs: tuple[Job, ...]) -> str:
    # The display name is the job id: pipeline/record.py matches the jobs API's names against it.
    lines = [f"  {job.name}:", f"    name: {job.name}", f"    runs-on: {RUNNER}"]
    if job.needs:
        lines.append(f"    needs: [{', '.join(job.needs)}]")
    condition = job_condition(job)
    if condition:
        lines.append(f"    if: ${{{{ {condition} }}}}")
    lines.append(f"    timeout-minutes: {math.ceil(job.timeout_minutes)}")
    lines += ["    permissions:", "      contents: read # checkout"]
    lines += [f"      {grant} # {reason}" for grant, reason in job.permissions]
    lines.append("    steps:")
    steps = _setup_steps(job) + _download_steps(job, jobs) + _run_and_upload_steps(job, jobs)
    return "\n".join(lines) + "\n" + steps


def render(jobs: tuple[Job, ...] = JOBS) -> str:
    return HEADER + "\n".join(render_job(job, jobs) for job in jobs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.workflow", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the workflow file is stale")
    parser.add_argument("--path", type=Path, default=WORKFLOW_PATH)
    args = parser.parse_args(argv)
    wanted = render()
    if args.check:
        current = args.path.read_text() if args.path.exists() else ""
        if current != wanted:
            print(f"{args.path} is stale: regenerate it with `python -m pipeline.workflow`", file=sys.stderr)
            return 1
        print(f"{args.path} agrees with pipeline/graph.py")
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(wanted)
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
