"""Serving the local checkout to Argo CD: the snapshot and the dumb-HTTP repository are real git.

The in-cluster git server is a static file server; here the same bare repository is served by
Python's http.server on 127.0.0.1 and cloned with git over HTTP, as Argo CD's repo-server would.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pipeline.gitops import source
from pipeline.targets.kube import git_server
from tests.helpers import require_program


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with one commit, then an edit, an untracked file and an ignored one."""
    require_program("git")
    repo = tmp_path / "checkout"
    repo.mkdir()
    _git(repo, "init", "--quiet", "-b", "main")
    _git(repo, "config", "user.email", "dev@example.invalid")
    _git(repo, "config", "user.name", "dev")
    (repo / ".gitignore").write_text("artifacts/\n")
    (repo / "overlay.yaml").write_text("replicas: 2\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "--quiet", "-m", "initial")
    (repo / "overlay.yaml").write_text("replicas: 3\n")
    (repo / "new-patch.yaml").write_text("added: true\n")
    (repo / "artifacts").mkdir()
    (repo / "artifacts" / "secret.txt").write_text("not for the cluster\n")
    monkeypatch.setattr(source, "REPO_ROOT", repo)
    return repo


def test_snapshot_holds_the_working_tree_and_touches_nothing(checkout: Path) -> None:
    status_before = _git(checkout, "status", "--porcelain")
    head_before = _git(checkout, "rev-parse", "HEAD")
    commit = source.snapshot_commit()
    assert _git(checkout, "show", f"{commit}:overlay.yaml") == "replicas: 3"
    assert _git(checkout, "show", f"{commit}:new-patch.yaml") == "added: true"
    assert "artifacts/secret.txt" not in _git(checkout, "ls-tree", "-r", "--name-only", commit)
    assert _git(checkout, "rev-parse", f"{commit}^") == head_before
    assert _git(checkout, "status", "--porcelain") == status_before
    assert _git(checkout, "rev-parse", "HEAD") == head_before


def test_two_snapshots_of_one_tree_are_one_commit_whenever_they_are_made(checkout: Path) -> None:
    """Test and demo snapshot the checkout at once, each replacing the git server's repository: a
    commit that depended on the clock (a second apart) would remove the other job's commit."""
    first = source.snapshot_commit()
    time.sleep(1.1)  # git stamps commits to the second
    assert source.snapshot_commit() == first


def test_bare_repository_clones_over_dumb_http(checkout: Path, tmp_path: Path) -> None:
    commit = source.snapshot_commit()
    served = tmp_path / "served"
    served.mkdir()
    source.bare_repository(commit, served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        clone = tmp_path / "clone"
        url = f"http://127.0.0.1:{server.server_address[1]}/repo.git"
        subprocess.run(
            ["git", "clone", "--quiet", url, str(clone)], check=True, timeout=60, capture_output=True
        )
        assert _git(clone, "rev-parse", "HEAD") == commit
        assert (clone / "overlay.yaml").read_text() == "replicas: 3\n"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_origin_must_be_pushed(checkout: Path) -> None:
    remote = checkout.parent / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    # Argo CD would clone the https URL; `git push` goes to the local bare repository.
    _git(checkout, "remote", "add", "origin", "https://git.example/o/r.git")
    _git(checkout, "remote", "set-url", "--push", "origin", str(remote))
    with pytest.raises(SystemExit, match="not pushed to origin"):
        source.origin_source(dry_run=False)
    _src, notes = source.origin_source(dry_run=True)
    assert any("not pushed" in note for note in notes)
    _git(checkout, "push", "--quiet", "origin", "main")
    pushed, notes = source.origin_source(dry_run=False)
    assert pushed.revision == _git(checkout, "rev-parse", "HEAD")
    assert any("uncommitted changes" in note for note in notes)


@pytest.mark.parametrize("form", ["path", "file URL"])
def test_an_origin_on_this_machine_is_refused_before_any_cluster_step(checkout: Path, form: str) -> None:
    remote = checkout.parent / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    _git(checkout, "remote", "add", "origin", str(remote) if form == "path" else remote.as_uri())
    _git(checkout, "push", "--quiet", "origin", "main")
    with pytest.raises(SystemExit, match=r"on this machine.*PIPELINE_GIT_SOURCE=in-cluster"):
        source.origin_source(dry_run=False)
    _src, notes = source.origin_source(dry_run=True)
    assert any("Argo CD inside the cluster cannot read" in note for note in notes)


def test_in_cluster_plan_serves_the_snapshot(checkout: Path) -> None:
    git_source, steps = git_server.in_cluster_source(
        "ml-inference:1", ("kubectl", "--context", "kind-ml-gitops")
    )
    assert git_source.repo_url == git_server.GIT_SERVER_URL
    assert _git(checkout, "cat-file", "-t", git_source.revision) == "commit"
    rendered = "\n".join(step.render() for step in steps)
    assert "kind: Namespace" in rendered and "name: git-server" in rendered
    assert "readOnlyRootFilesystem: true" in rendered and "runAsNonRoot: true" in rendered
    assert "rollout status -n ml-gitops-git deployment/git-server" in rendered
    assert git_source.revision[:12] in rendered


def test_the_git_server_runs_under_the_restricted_profile() -> None:
    from pipeline.gitops.checks import policy
    from pipeline.gitops.checks.argocd_rules import RESTRICTED_NAMESPACE_LABELS

    namespace, deployment, _ = git_server.git_server_objects("ml-inference:1")
    assert namespace["metadata"]["labels"] == RESTRICTED_NAMESPACE_LABELS
    assert policy.pod_security_restricted([deployment]) == []
    assert policy.image_pinned([deployment]) == []
