"""What the build hands on in GitHub Actions: outputs through `needs`, and the tags it pushes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.artifacts import NEEDS_VARIABLE, read_outputs, write_json_atomic
from pipeline.build.registry import PUSH_VARIABLE, extra_tags, push_repository
from pipeline.context import RunContext


def test_needs_outputs_win_over_the_artifact_copy_which_still_serves_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_ARTIFACTS_DIR", str(tmp_path))
    context = RunContext.from_env()
    write_json_atomic(tmp_path / "build-output" / "outputs.json", {"image_tag": "old", "model_version": "3"})
    assert read_outputs("build", context) == {"image_tag": "old", "model_version": "3"}  # locally
    needs = {"build": {"result": "success", "outputs": {"image-tag": "new", "image-digest": "sha256:ab"}}}
    monkeypatch.setenv(NEEDS_VARIABLE, json.dumps(needs))
    assert read_outputs("build", context) == {
        "image_tag": "new",
        "image_digest": "sha256:ab",
        "model_version": "3",
    }


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("refs/heads/main", ["sha-0123456", "main"]),
        ("refs/heads/feature/x y", ["sha-0123456", "feature-x-y"]),
        ("refs/pull/42/merge", ["sha-0123456", "pr-42"]),
        ("refs/heads/latest", ["sha-0123456"]),
    ],
)
def test_the_extra_tags_name_commit_branch_or_pull_request_and_never_latest(
    ref: str, expected: list[str]
) -> None:
    assert extra_tags({"GITHUB_SHA": "0123456789abcdef", "GITHUB_REF": ref}) == expected


def test_a_fork_pull_request_does_not_push() -> None:
    github = {"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "Owner/Repo"}
    assert push_repository(github, "ml-inference") == "ghcr.io/owner/repo/ml-inference"
    assert push_repository({**github, PUSH_VARIABLE: "false"}, "ml-inference") is None
