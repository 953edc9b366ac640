"""A git server inside the cluster, serving a snapshot of this checkout to Argo CD.

With PIPELINE_GIT_SOURCE=in-cluster the snapshot commit (`pipeline.gitops.source`) is pushed to a
bare repository and served over git's dumb HTTP protocol by a pod hardened like the service.
"""

from __future__ import annotations

import string
import subprocess
import tempfile
from pathlib import Path

import yaml

from pipeline.gitops.checks.argocd_rules import RESTRICTED_NAMESPACE_LABELS
from pipeline.gitops.render import Manifest
from pipeline.gitops.source import GitSource, bare_repository, snapshot_commit
from pipeline.targets.kube.plan import Call, Command, Step, apply

GIT_NAMESPACE = "ml-gitops-git"
GIT_SERVER = "git-server"
GIT_SERVER_URL = f"http://{GIT_SERVER}.{GIT_NAMESPACE}.svc.cluster.local/repo.git"
SERVED_DIRECTORY = "/srv/git"
#: The git server's Deployment, as kubectl's arguments.
DEPLOYMENT = ("-n", GIT_NAMESPACE, f"deployment/{GIT_SERVER}")


def git_server_objects(image: str) -> list[Manifest]:
    """The namespace, Deployment and Service of git-server.yaml, serving `image`'s Python."""
    template = string.Template((Path(__file__).parent / "git-server.yaml").read_text())
    text = template.substitute(
        namespace=GIT_NAMESPACE, name=GIT_SERVER, image=image, directory=SERVED_DIRECTORY
    )
    namespace, *objects = yaml.safe_load_all(text)
    namespace["metadata"]["labels"] = dict(RESTRICTED_NAMESPACE_LABELS)
    return [namespace, *objects]


def publish(commit: str, kubectl: tuple[str, ...]) -> None:
    """Copy a bare repository holding `commit` into the git server pod."""
    with tempfile.TemporaryDirectory() as scratch:
        bare_repository(commit, Path(scratch))
        tar = subprocess.Popen(["tar", "-C", scratch, "-c", "repo.git"], stdout=subprocess.PIPE)
        copy = subprocess.run(
            [
                *kubectl, "exec", "-i", *DEPLOYMENT, "--",
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
        apply(
            kubectl,
            git_server_objects(image),
            "serve this checkout to Argo CD from inside the cluster (git dumb-HTTP server)",
        ),
        Command(
            (*kubectl, "rollout", "status", *DEPLOYMENT, "--timeout=180s"),
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
