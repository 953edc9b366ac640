"""Git's desired state for the local target: the rendered overlay, read the way a kubelet would.

`pipeline.gitops.render` renders `gitops/overlays/local` exactly as Argo CD would; from the
`ml-inference` Deployment we read what a process needs: replica count, command and args, env,
probe paths and windows, and the termination grace period. Local stand-ins replace what only a
cluster has: the container's `python` is the deploy session's interpreter, the model is the build
job's, every replica listens on loopback on a port of its own (its "pod IP") and also on the
environment's shared endpoint port.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.gitops.render import RenderError
from pipeline.scrub import is_secret_name, mask_text
from pipeline.targets.local import layout

DEPLOYMENT = "ml-inference"
CONTAINER = "ml-inference"
#: Set per replica, like a pod IP: never part of what is compared with Git.
PORT_VARIABLE = "ML_INFERENCE_PORT"
#: The environment's single endpoint, shared by every replica with SO_REUSEPORT.
SHARED_PORT_VARIABLE = "ML_INFERENCE_SHARED_PORT"
#: Replicas are reachable on loopback only, whatever the manifest says for a cluster.
LOCAL_HOST = "127.0.0.1"
PYTHON_COMMANDS = ("python", "python3")


class DesiredStateError(RenderError):
    """Git's manifests render, but cannot be run locally; the message names the fix."""


@dataclass(frozen=True)
class Probe:
    path: str
    #: failureThreshold x periodSeconds: how long the probe may fail before it counts.
    window_seconds: float


@dataclass(frozen=True)
class DesiredState:
    """What Git says should run, already mapped onto local processes."""

    #: sha256 of the rendered manifests: changes whenever Git's state does.
    revision: str
    replicas: int
    argv: tuple[str, ...]
    #: The replica environment minus its own port.
    env: dict[str, str]
    startup: Probe | None
    readiness: Probe | None
    liveness: Probe | None
    grace_seconds: float

    @property
    def template_hash(self) -> str:
        """Names replicas like a ReplicaSet's pod-template-hash: same config, same prefix."""
        spec = json.dumps([self.argv, self.env], sort_keys=True)
        return hashlib.sha256(spec.encode()).hexdigest()[:8]

    def differences(self, argv: list[str], environ: dict[str, str]) -> list[str]:
        """How a live process differs from Git (empty: it runs Git's config)."""
        found = []
        if tuple(argv) != self.argv:
            found.append(f"command {' '.join(argv)!r}, Git says {' '.join(self.argv)!r}")
        # What the reconciler gives every replica itself is not Git's to judge, unless Git sets it.
        own = {PORT_VARIABLE, layout.ENVIRONMENT_LABEL, layout.REPLICA_LABEL, *layout.PASSTHROUGH_VARIABLES}
        compared = (set(environ) - own) | (set(self.env) - {PORT_VARIABLE})
        for key in sorted(compared):
            live, wanted = environ.get(key), self.env.get(key)
            if live == wanted:
                continue
            if is_secret_name(key):  # what it holds is a credential: that it differs is enough
                found.append(f"{key} differs from Git (its value is not shown)")
            else:
                shown = live if live is not None else "<unset>"
                found.append(mask_text(f"{key}={shown}, Git says {wanted or '<unset>'}"))
        return found


def desired_state(manifests: str, *, model_dir: Path, shared_port: int) -> DesiredState:
    """Map the rendered `ml-inference` Deployment onto local replica processes."""
    documents = [doc for doc in yaml.safe_load_all(manifests) if doc]
    deployments = [
        doc for doc in documents if doc.get("kind") == "Deployment" and doc["metadata"]["name"] == DEPLOYMENT
    ]
    if not deployments:
        raise DesiredStateError(f"the rendered manifests have no Deployment named {DEPLOYMENT!r}")
    spec = deployments[0]["spec"]
    pod = spec["template"]["spec"]
    container = next((c for c in pod["containers"] if c["name"] == CONTAINER), None)
    if container is None:
        raise DesiredStateError(f"Deployment {DEPLOYMENT!r} has no container named {CONTAINER!r}")
    return DesiredState(
        revision=hashlib.sha256(manifests.encode()).hexdigest(),
        replicas=int(spec.get("replicas", 1)),
        argv=_argv(container),
        env=_env(container, model_dir=model_dir, shared_port=shared_port),
        startup=_probe(container, "startupProbe"),
        readiness=_probe(container, "readinessProbe"),
        liveness=_probe(container, "livenessProbe"),
        grace_seconds=float(pod.get("terminationGracePeriodSeconds", 30)),
    )


def _argv(container: dict) -> tuple[str, ...]:
    argv = [*container.get("command", []), *container.get("args", [])]
    if not argv or Path(argv[0]).name not in PYTHON_COMMANDS:
        raise DesiredStateError(
            f"container {CONTAINER!r} runs {argv!r}; the local target runs only `python ...` commands"
        )
    return (sys.executable, *argv[1:])


def _env(container: dict, *, model_dir: Path, shared_port: int) -> dict[str, str]:
    env = {}
    for variable in container.get("env", []):
        if "value" not in variable:
            raise DesiredStateError(
                f"env {variable['name']} uses valueFrom, which the local target cannot resolve; use `value`"
            )
        env[variable["name"]] = str(variable["value"])
    env.pop(PORT_VARIABLE, None)
    env["ML_INFERENCE_HOST"] = LOCAL_HOST
    env["ML_INFERENCE_MODEL_DIR"] = str(model_dir)
    env[SHARED_PORT_VARIABLE] = str(shared_port)
    return env


def _probe(container: dict, kind: str) -> Probe | None:
    probe = container.get(kind)
    if probe is None:
        return None
    if "httpGet" not in probe:
        raise DesiredStateError(
            f"{kind} of {CONTAINER!r} is not an httpGet probe; the local target needs one"
        )
    window = float(probe.get("periodSeconds", 10)) * int(probe.get("failureThreshold", 3))
    return Probe(path=probe["httpGet"]["path"], window_seconds=window)
