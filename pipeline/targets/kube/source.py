"""Where Argo CD reads this repository: the `origin` remote, or a git server inside the cluster.

GitOps means the cluster deploys what Git holds, so by default Argo CD reads `origin` at the
current commit, which must be pushed. PIPELINE_GIT_SOURCE=in-cluster instead snapshots the
working tree (uncommitted and untracked files included, ignored ones not) into a commit, pushes
it to a bare repository and serves that over git's dumb HTTP protocol from a pod in the cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from pipeline.manifests.argocd import RESTRICTED_NAMESPACE_LABELS
from pipeline.manifests.render import REPO_ROOT, Manifest
from pipeline.targets.kube.argocd import GitSource
from pipeline.targets.kube.plan import Call, Command, Step

#: Where Argo CD reads Git: `origin` (the pushed commit) or `in-cluster` (this working tree, served inside).
GIT_SOURCE_ENV = "PIPELINE_GIT_SOURCE"
GIT_SOURCES = ("origin", "in-cluster")
GIT_NAMESPACE = "ml-gitops-git"
GIT_SERVER = "git-server"
GIT_SERVER_URL = f"http://{GIT_SERVER}.{GIT_NAMESPACE}.svc.cluster.local/repo.git"
SERVED_DIRECTORY = "/srv/git"


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
    """An https URL Argo CD can clone without credentials (public repositories)."""
    match = re.fullmatch(r"(?:ssh://)?git@([^:/]+)[:/](.+?)(?:\.git)?/?", remote)
    return f"https://{match.group(1)}/{match.group(2)}.git" if match else remote


def origin_source(*, dry_run: bool) -> tuple[GitSource, list[str]]:
    """`origin` at HEAD, with notes for the user; refuses an unpushed commit unless dry-running."""
    commit = git("rev-parse", "HEAD")
    notes = []
    remotes = git("remote").split()
    if "origin" not in remotes:
        message = (
            f"this checkout has no `origin` remote for Argo CD; add one, or set {GIT_SOURCE_ENV}=in-cluster"
        )
        if not dry_run:
            raise SystemExit(message)
        return GitSource("https://git.invalid/no-origin-remote.git", commit), [message]
    url = https_url(git("remote", "get-url", "origin"))
    if git("status", "--porcelain"):
        notes.append("the working tree has uncommitted changes: Argo CD deploys the commit, not them")
    if not git("branch", "-r", "--contains", commit):
        message = (
            f"commit {commit[:12]} is not pushed to origin ({url}): Argo CD reads Git, so `git push` first, "
            f"or set {GIT_SOURCE_ENV}=in-cluster to serve this checkout from inside the cluster"
        )
        if not dry_run:
            raise SystemExit(message)
        notes.append(message)
    return GitSource(url, commit), notes


def snapshot_commit() -> str:
    """A commit of the working tree as it is, made through a temporary index (refs and index untouched)."""
    with tempfile.TemporaryDirectory() as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git("add", "--all", ".", env=index)
        tree = git("write-tree", env=index)
    return git(
        "commit-tree",
        tree,
        "-p",
        "HEAD",
        "-m",
        "ml-gitops pipeline snapshot of the working tree",
        env={
            "GIT_AUTHOR_NAME": "ml-gitops",
            "GIT_AUTHOR_EMAIL": "pipeline@ml-gitops.invalid",
            "GIT_COMMITTER_NAME": "ml-gitops",
            "GIT_COMMITTER_EMAIL": "pipeline@ml-gitops.invalid",
        },
    )


def git_server_objects(image: str) -> list[Manifest]:
    """A static file server (the service image's Python) hardened like the service itself."""
    labels = {"app.kubernetes.io/name": GIT_SERVER, "app.kubernetes.io/part-of": "ml-gitops-pipeline"}
    security = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": GIT_NAMESPACE, "labels": dict(RESTRICTED_NAMESPACE_LABELS)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": GIT_SERVER, "namespace": GIT_NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "containers": [
                            {
                                "name": GIT_SERVER,
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "command": [
                                    "python",
                                    "-m",
                                    "http.server",
                                    "8080",
                                    "--directory",
                                    SERVED_DIRECTORY,
                                ],
                                "ports": [{"name": "http", "containerPort": 8080}],
                                "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 2},
                                "resources": {
                                    "requests": {"cpu": "10m", "memory": "32Mi"},
                                    "limits": {"cpu": "200m", "memory": "128Mi"},
                                },
                                "securityContext": security,
                                "volumeMounts": [
                                    {"name": "git", "mountPath": SERVED_DIRECTORY},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [{"name": "git", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": GIT_SERVER, "namespace": GIT_NAMESPACE, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    ]


def bare_repository(commit: str, directory: Path) -> Path:
    """`directory`/repo.git holding `commit` as branch main, servable by any static file server."""
    bare = directory / "repo.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git("push", "--quiet", str(bare), f"{commit}:refs/heads/main")
    git("--git-dir", str(bare), "repack", "-a", "-d", "-q")
    # The index files git's dumb HTTP protocol reads (info/refs, objects/info/packs).
    git("--git-dir", str(bare), "update-server-info")
    return bare


def publish(commit: str, kubectl: tuple[str, ...]) -> None:
    """Copy a bare repository holding `commit` into the git server pod."""
    with tempfile.TemporaryDirectory() as scratch:
        bare_repository(commit, Path(scratch))
        tar = subprocess.Popen(["tar", "-C", scratch, "-c", "repo.git"], stdout=subprocess.PIPE)
        copy = subprocess.run(
            [
                *kubectl, "exec", "-i", "-n", GIT_NAMESPACE, f"deployment/{GIT_SERVER}", "--",
                "sh", "-c", f"rm -rf {SERVED_DIRECTORY}/repo.git && tar -x -C {SERVED_DIRECTORY}",
            ],
            stdin=tar.stdout, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        tar.wait(timeout=60)
        if copy.returncode != 0 or tar.returncode != 0:
            raise SystemExit(f"copying the snapshot into the git server failed: {copy.stderr.strip()}")


def in_cluster_source(image: str, kubectl: tuple[str, ...]) -> tuple[GitSource, list[Step]]:
    commit = snapshot_commit()
    steps: list[Step] = [
        Command(
            (*kubectl, "apply", "--server-side", "--field-manager=ml-gitops-pipeline", "-f", "-"),
            "serve this checkout to Argo CD from inside the cluster (git dumb-HTTP server)",
            objects=tuple(git_server_objects(image)),
        ),
        Command(
            (
                *kubectl,
                "rollout",
                "status",
                "-n",
                GIT_NAMESPACE,
                f"deployment/{GIT_SERVER}",
                "--timeout=180s",
            ),
            "wait until the git server is ready",
        ),
        Call(
            f"push working-tree snapshot {commit[:12]} to a bare repository (git update-server-info) and "
            f"copy it into deployment/{GIT_SERVER}: tar -c repo.git | "
            f"kubectl exec -i -n {GIT_NAMESPACE} deployment/{GIT_SERVER} -- tar -x -C {SERVED_DIRECTORY}",
            lambda: publish(commit, kubectl),
        ),
    ]
    return GitSource(GIT_SERVER_URL, commit), steps


def git_source_mode() -> str:
    mode = os.environ.get(GIT_SOURCE_ENV, "origin")
    if mode not in GIT_SOURCES:
        raise SystemExit(f"{GIT_SOURCE_ENV}={mode!r} is not one of {', '.join(GIT_SOURCES)}")
    return mode
