"""The repository and commit Argo CD reads: the `origin` remote, or a snapshot of this checkout.

GitOps means the cluster deploys what Git holds, so by default Argo CD reads `origin` at the
current commit, which must be pushed. PIPELINE_GIT_SOURCE=in-cluster instead snapshots the
working tree (uncommitted and untracked files included, ignored ones not) into a commit and a bare
repository, which the Kubernetes target serves from a pod in the cluster
(`pipeline.targets.kube.git_server`).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pipeline.gitops.render import REPO_ROOT

GIT_SOURCE_ENV = "PIPELINE_GIT_SOURCE"
GIT_SOURCES = ("origin", "in-cluster")


@dataclass(frozen=True)
class GitSource:
    """Where Argo CD reads this repository from."""

    repo_url: str
    revision: str


def git(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    if result.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def https_url(remote: str) -> str:
    """An https URL Argo CD can clone without credentials (public repositories).

    An ssh remote becomes its https twin; an http(s) remote loses its userinfo (`user:token@`),
    which must never reach the cluster, the AppProjects or a log. A private repository is
    served to Argo CD by the in-cluster git server instead (PIPELINE_GIT_SOURCE=in-cluster).
    """
    match = re.fullmatch(r"(?:ssh://)?git@([^:/]+)[:/](.+?)(?:\.git)?/?", remote)
    if match:
        return f"https://{match.group(1)}/{match.group(2)}.git"
    parts = urlsplit(remote)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return remote


def origin_source(*, dry_run: bool) -> tuple[GitSource, list[str]]:
    """`origin` at HEAD, with notes for the user; refuses an unpushed commit unless dry-running."""
    commit = git("rev-parse", "HEAD")
    notes: list[str] = []

    def refuse(message: str) -> None:
        """A dry run only plans, so what a real run refuses becomes a note."""
        if not dry_run:
            raise SystemExit(message)
        notes.append(message)

    if "origin" not in git("remote").split():
        refuse(
            f"this checkout has no `origin` remote for Argo CD; add one, or set {GIT_SOURCE_ENV}=in-cluster"
        )
        return GitSource("https://git.invalid/no-origin-remote.git", commit), notes
    url = https_url(git("remote", "get-url", "origin"))
    if urlsplit(url).scheme in ("", "file"):
        refuse(
            f"origin ({url}) is on this machine, and Argo CD inside the cluster cannot read it: push to "
            f"a remote it can reach and set origin to that, or set {GIT_SOURCE_ENV}=in-cluster"
        )
    if git("status", "--porcelain"):
        notes.append("the working tree has uncommitted changes: Argo CD deploys the commit, not them")
    if not git("branch", "-r", "--contains", commit):
        refuse(
            f"commit {commit[:12]} is not pushed to origin ({url}): Argo CD reads Git, so `git push` first, "
            f"or set {GIT_SOURCE_ENV}=in-cluster to serve this checkout from inside the cluster"
        )
    return GitSource(url, commit), notes


SNAPSHOT_IDENTITY = {
    "GIT_AUTHOR_NAME": "ml-gitops",
    "GIT_AUTHOR_EMAIL": "pipeline@ml-gitops.invalid",
    "GIT_COMMITTER_NAME": "ml-gitops",
    "GIT_COMMITTER_EMAIL": "pipeline@ml-gitops.invalid",
}


def snapshot_commit() -> str:
    """A commit of the working tree as it is, made through a temporary index (refs and index untouched).

    Dated as HEAD, not by the clock: jobs that snapshot one tree (test and demo, in parallel) make one
    commit, so neither's upload to the in-cluster git server removes the other's.
    """
    with tempfile.TemporaryDirectory() as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git("add", "--all", ".", env=index)
        tree = git("write-tree", env=index)
    message = "ml-gitops pipeline snapshot of the working tree"
    date = git("show", "-s", "--format=%cI", "HEAD")
    dated = {**SNAPSHOT_IDENTITY, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return git("commit-tree", tree, "-p", "HEAD", "-m", message, env=dated)


def bare_repository(commit: str, directory: Path) -> None:
    """`directory`/repo.git holding `commit` as branch main, servable by any static file server."""
    bare = directory / "repo.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git("push", "--quiet", str(bare), f"{commit}:refs/heads/main")
    git("--git-dir", str(bare), "repack", "-a", "-d", "-q")
    # The index files git's dumb HTTP protocol reads (info/refs, objects/info/packs).
    git("--git-dir", str(bare), "update-server-info")


def git_source_mode() -> str:
    """PIPELINE_GIT_SOURCE, else `in-cluster` in GitHub Actions (GITHUB_ACTIONS=true), else `origin`.

    In CI the checkout may be private, a fork's PR head or a merge ref that Argo CD cannot clone
    (checkout runs with persist-credentials: false), so CI serves the checked-out commit from inside
    the cluster: no token ever reaches the cluster.
    """
    default = "in-cluster" if os.environ.get("GITHUB_ACTIONS") == "true" else "origin"
    mode = os.environ.get(GIT_SOURCE_ENV) or default
    if mode not in GIT_SOURCES:
        raise SystemExit(f"{GIT_SOURCE_ENV}={mode!r} is not one of {', '.join(GIT_SOURCES)}")
    return mode
