"""kind and minikube: the only places the two targets differ.

Each knows how to create its cluster (pinned Kubernetes), give it a metrics API (the HPA needs
one, or Argo CD reports it Degraded), load the build's image without a registry, and delete it.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pipeline.gitops.versions import (
    KIND_NODE_IMAGE,
    KIND_VERSION,
    KUBERNETES_VERSION,
    METRICS_SERVER_URL,
    MINIKUBE_VERSION,
)
from pipeline.ports import free_port
from pipeline.targets.kube import plan
from pipeline.targets.kube.plan import Call, Command, Query

#: The one cluster (kind) or profile (minikube) this project creates and `invoke down` deletes.
CLUSTER_NAME = "ml-gitops"
#: Each environment's Service is a NodePort of its own (test and demo share a cluster locally);
#: kind maps each to a host port on 127.0.0.1 (extraPortMappings), the path a real client uses.
NODE_PORTS = {"deploy": 30080, "test": 30081, "demo": 30082}
#: kind's kubelets serve self-signed certificates, which metrics-server refuses unless told not to verify.
INSECURE_KUBELET_TLS_PATCH = [
    {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--kubelet-insecure-tls"}
]


@dataclass(frozen=True)
class Cluster:
    tool: str

    @property
    def context(self) -> str:
        return f"kind-{CLUSTER_NAME}" if self.tool == "kind" else CLUSTER_NAME

    @property
    def kubectl(self) -> tuple[str, ...]:
        return ("kubectl", "--context", self.context)

    @property
    def pinned_version(self) -> str:
        return KIND_VERSION if self.tool == "kind" else MINIKUBE_VERSION

    def check_version(self) -> Call:
        """The tool must be the pinned release: kind's node images are built for one kind release."""
        argv = ("kind", "version") if self.tool == "kind" else ("minikube", "version", "--short")

        def check() -> None:
            try:
                result = plan.run_process(argv, None, 60)
            except (OSError, subprocess.SubprocessError) as error:
                raise SystemExit(f"{self.tool} {self.pinned_version} is needed on PATH ({error})") from None
            words = result.stdout.split()
            found = ((words[1:2] if self.tool == "kind" else words[:1]) or ["no version"])[0]
            if found != self.pinned_version:
                raise SystemExit(
                    f"{self.tool} {found} found, but this pipeline is pinned to {self.pinned_version} "
                    "(pipeline/gitops/versions.py); install that release"
                )

        return Call(f"check that `{' '.join(argv)}` reports the pinned {self.pinned_version}", check)

    @cached_property
    def kind_config(self) -> dict[str, Any]:
        """One node; each NodePort mapped to a host port on 127.0.0.1, free when the cluster is created.

        The ports live on in the node container's port bindings (`docker port`), where the
        environments read them back, so a kept cluster keeps its ports.
        """
        mappings = [
            {"containerPort": port, "hostPort": free_port(), "listenAddress": "127.0.0.1", "protocol": "TCP"}
            for port in NODE_PORTS.values()
        ]
        node = {"role": "control-plane", "extraPortMappings": mappings}
        return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [node]}

    def endpoint_argv(self, env_name: str, namespace: str) -> tuple[str, ...]:
        """The command that prints the URL of `env_name`'s service through its NodePort."""
        if self.tool == "kind":  # kind's node is a Docker container, which holds the host ports
            return ("docker", "port", f"{CLUSTER_NAME}-control-plane", f"{NODE_PORTS[env_name]}/tcp")
        return ("minikube", "service", "ml-inference", "-n", namespace, "--url", "--profile", CLUSTER_NAME)

    def exists(self) -> Query:
        if self.tool == "kind":
            return Query(("kind", "get", "clusters"), line=CLUSTER_NAME)
        return Query(("minikube", "status", "--profile", CLUSTER_NAME))

    def create(self) -> list[Command]:
        if self.tool == "minikube":
            version = f"--kubernetes-version={KUBERNETES_VERSION}"
            return [
                Command(
                    ("minikube", "start", "--profile", CLUSTER_NAME, version, "--wait=all"),
                    f"start the minikube profile {CLUSTER_NAME} (Kubernetes {KUBERNETES_VERSION})",
                    unless=self.exists(),
                ),
                Command(
                    ("minikube", "addons", "enable", "metrics-server", "--profile", CLUSTER_NAME),
                    "enable minikube's metrics-server addon (the HPA's metrics API)",
                ),
            ]
        metrics_server = ("deployment", "metrics-server", "-n", "kube-system")
        create = ("kind", "create", "cluster", "--name", CLUSTER_NAME, "--image", KIND_NODE_IMAGE)
        insecure_tls = json.dumps(INSECURE_KUBELET_TLS_PATCH)
        first_container_args = 'jsonpath={range .spec.template.spec.containers[0].args[*]}{@}{"\\n"}{end}'
        return [
            Command(
                (*create, "--config", "-", "--wait", "180s"),
                f"create kind cluster {CLUSTER_NAME} running Kubernetes {KUBERNETES_VERSION}, its "
                "NodePorts mapped to free ports on 127.0.0.1; kind cluster config:",
                objects=(self.kind_config,),
                unless=self.exists(),
                undo=self.delete_argv(),
            ),
            Command(
                (*self.kubectl, "apply", "--server-side", "-f", METRICS_SERVER_URL),
                "install metrics-server (the HPA's metrics API; kind has none)",
                unless=Query((*self.kubectl, "get", *metrics_server)),
            ),
            Command(
                (*self.kubectl, "patch", *metrics_server, "--type", "json", "-p", insecure_tls),
                "let metrics-server accept kind's self-signed kubelet certificates",
                unless=Query(
                    (*self.kubectl, "get", *metrics_server, "-o", first_container_args),
                    line="--kubelet-insecure-tls",
                ),
            ),
        ]

    @property
    def load_method(self) -> str:
        return "kind load docker-image" if self.tool == "kind" else "minikube image load"

    def load_image(self, image: str) -> Command:
        """Run `load_method` on `image`: the plan's summary names exactly the command that loads it."""
        cluster = ("--name" if self.tool == "kind" else "--profile", CLUSTER_NAME)
        return Command(
            (*self.load_method.split(), image, *cluster),
            f"load the build's image {image} into the cluster's nodes (it runs with imagePullPolicy Never)",
        )

    def metrics_ready(self) -> Command:
        available = ("--for=condition=Available", "deployment/metrics-server", "-n", "kube-system")
        return Command(
            (*self.kubectl, "wait", *available, "--timeout=300s"),
            "wait until the metrics API serves (the HPA reads it)",
        )

    def delete_argv(self) -> tuple[str, ...]:
        if self.tool == "kind":
            return ("kind", "delete", "cluster", "--name", CLUSTER_NAME)
        return ("minikube", "delete", "--profile", CLUSTER_NAME)
