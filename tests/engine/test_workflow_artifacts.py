"""The generated workflow's artifact round trip, replayed job by job: each job finds the files of all
its needs, direct or not, where `pipeline.artifacts.job_dir` looks for them, byte for byte.

GitHub's artifact store cannot run here, so `FakeArtifactStore` is a fake of upload-artifact and
download-artifact, written from their documented rules (READMEs) and their sources
(actions/upload-artifact src/shared/search.ts, actions/download-artifact src/download-artifact.ts):
- upload: a pattern's search path is the part before its first wildcard segment; with several
  search paths the artifact's root is their least common ancestor, with one it is that directory,
  or a single file's parent directory;
  (exclusions are not modelled: the workflow has none);
- download: `name` extracts that artifact (which must exist) into `path`; `pattern` extracts every
  matching artifact (none is fine) into `path/<artifact>`, or into `path` itself with merge-multiple.
The first tests check the fake against the examples of those READMEs.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
from pathlib import Path

import pytest
import yaml

from pipeline.artifacts import job_dir
from pipeline.context import RunContext
from pipeline.graph import JOBS, JOBS_BY_NAME, Job, upstream
from pipeline.workflow import IMAGE_ARTIFACT, WORKFLOW_PATH

REPO = Path(__file__).resolve().parents[2]
WILDCARDS = set("*?[")

Files = dict[str, bytes]


def files_under(root: Path) -> Files:
    return {
        path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


class FakeArtifactStore:
    """A fake of GitHub's artifact store as upload-artifact and download-artifact see it (see module doc)."""

    def __init__(self) -> None:
        self.artifacts: dict[str, Files] = {}

    def upload(self, workspace: Path, name: str, path: str) -> None:
        patterns = [line.strip() for line in path.splitlines() if line.strip() and not line.startswith("!")]
        search_paths = [
            workspace.joinpath(
                *itertools.takewhile(lambda part: not WILDCARDS & set(part), Path(pattern).parts)
            )
            for pattern in patterns
        ]
        matched = []
        for pattern in patterns:
            for hit in sorted(workspace.glob(pattern.rstrip("/"))):
                matched += [hit] if hit.is_file() else [p for p in hit.rglob("*") if p.is_file()]
        if not matched:
            return  # if-no-files-found: ignore
        if len(search_paths) > 1:
            root = Path(os.path.commonpath(search_paths))
        elif len(matched) == 1 and matched[0] == search_paths[0]:
            root = matched[0].parent
        else:
            root = search_paths[0]
        self.artifacts[name] = {file.relative_to(root).as_posix(): file.read_bytes() for file in matched}

    def download(self, workspace: Path, options: dict) -> None:
        target = workspace / options["path"]
        if "name" in options:
            if options["name"] not in self.artifacts:
                raise FileNotFoundError(
                    f"Unable to download artifact(s): Artifact '{options['name']}' not found"
                )
            chosen = {options["name"]: target}
        else:
            merge = options.get("merge-multiple", False)
            chosen = {
                name: target if merge else target / name
                for name in self.artifacts
                if fnmatch.fnmatchcase(name, options.get("pattern", "*"))
            }
        for name, destination in chosen.items():
            for relative, content in self.artifacts[name].items():
                (destination / relative).parent.mkdir(parents=True, exist_ok=True)
                (destination / relative).write_bytes(content)


def test_the_fake_upload_follows_upload_artifacts_documented_root_rules(tmp_path: Path) -> None:
    for relative in ("path/output/bin/app", "path/output/test-results/a.xml", "path/to/artifact/world.txt"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    store = FakeArtifactStore()
    store.upload(tmp_path, "multi", "path/output/bin/\npath/output/test-results\n!path/**/*.tmp")
    store.upload(tmp_path, "directory", "path/to/artifact/")
    store.upload(tmp_path, "file", "path/to/artifact/world.txt")
    store.upload(tmp_path, "nothing", "path/missing/")
    assert set(store.artifacts["multi"]) == {"bin/app", "test-results/a.xml"}
    assert set(store.artifacts["directory"]) == {"world.txt"}
    assert set(store.artifacts["file"]) == {"world.txt"}
    assert "nothing" not in store.artifacts


def test_the_fake_download_follows_download_artifacts_documented_paths(tmp_path: Path) -> None:
    store = FakeArtifactStore()
    store.artifacts = {"a": {"x.txt": b"a"}, "b": {"y.txt": b"b"}}
    store.download(tmp_path, {"name": "a", "path": "one"})
    store.download(tmp_path, {"path": "all"})
    store.download(tmp_path, {"pattern": "*", "path": "merged", "merge-multiple": True})
    store.download(tmp_path, {"pattern": "absent", "path": "none"})
    assert files_under(tmp_path) == {
        "one/x.txt": b"a",
        "all/a/x.txt": b"a",
        "all/b/y.txt": b"b",
        "merged/x.txt": b"a",
        "merged/y.txt": b"b",
    }
    with pytest.raises(FileNotFoundError, match="'absent' not found"):
        store.download(tmp_path, {"name": "absent", "path": "none"})


def write_job_files(workspace: Path, job: Job) -> Files:
    """What a job leaves behind: its artifact folder (nested, with outputs) and its log."""
    folder = job_dir(job.name, context(workspace)) if job.artifact else None
    if folder is not None:
        (folder / "deep" / "er").mkdir(parents=True)
        (folder / "outputs.json").write_text(f'{{"job": "{job.name}"}}')
        (folder / "deep" / "er" / f"{job.name}.bin").write_bytes(job.name.encode() * 3)
    log = workspace / "artifacts" / "logs" / f"{job.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"log of {job.name}\n")
    return files_under(folder) if folder else {}


def context(workspace: Path) -> RunContext:
    return RunContext("local", "full", workspace / "artifacts", "round-trip", dry_run=False, keep=False)


def run_workflow(tmp_path: Path, *, skipped: frozenset[str] = frozenset()) -> dict[str, Path]:
    """Each job on a fresh runner: its download steps, its files, its upload steps; returns the workspaces."""
    workflow = yaml.safe_load((REPO / WORKFLOW_PATH).read_text())["jobs"]
    store = FakeArtifactStore()
    made: dict[str, Files] = {}
    workspaces = {}
    for job in JOBS:
        if job.name in skipped:
            continue
        workspace = workspaces[job.name] = tmp_path / job.name
        workspace.mkdir()
        # This replays the default target's run: steps for kind/minikube only do not run, and the
        # image travels through the runner's temp folder, not artifacts/ (test_workflow checks it).
        steps = [
            step
            for step in workflow[job.name]["steps"]
            if "env.PIPELINE_TARGET" not in step.get("if", "") and IMAGE_ARTIFACT not in step.get("name", "")
        ]
        for step in steps:
            if "download-artifact" in step.get("uses", ""):
                store.download(workspace, step["with"])
        for need in upstream(JOBS, job.name):  # locally a job sees every earlier folder; so must it here
            if need in skipped:
                assert not (workspace / "artifacts" / str(JOBS_BY_NAME[need].artifact)).exists()
                continue
            assert files_under(job_dir(need, context(workspace))) == made[need], f"{job.name} reading {need}"
        made[job.name] = write_job_files(workspace, job)
        for step in steps:
            if "upload-artifact" in step.get("uses", ""):
                store.upload(workspace, step["with"]["name"], step["with"]["path"])
    return workspaces


def test_every_job_finds_its_needs_files_where_job_dir_expects_them(tmp_path: Path) -> None:
    workspaces = run_workflow(tmp_path)
    report = workspaces["report"] / "artifacts"
    needs = JOBS_BY_NAME["report"].needs
    assert {f"{need}.log" for need in needs} <= set(files_under(report / "logs"))
    assert (report / "logs" / "build.log").read_text() == "log of build\n"


def test_the_report_gets_what_there_is_when_a_job_uploaded_nothing(tmp_path: Path) -> None:
    workspaces = run_workflow(tmp_path, skipped=frozenset({"demo"}))
    assert not (workspaces["report"] / "artifacts" / "logs" / "demo.log").exists()
