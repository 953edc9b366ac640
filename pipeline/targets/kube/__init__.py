"""The kind and minikube targets: real Kubernetes, with Argo CD deploying from Git.

`up(env)` builds one plan (create the cluster if absent, load the build's image, install Argo
CD, apply the AppProject and Applications, watch until Synced and Healthy) and executes it;
with PIPELINE_DRY_RUN=1 it prints the same plan, including the port-forwards and the demo's
drift commands, and stops without touching a cluster. Versions live in `versions.py`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from pipeline.artifacts import read_outputs
from pipeline.context import RunContext
from pipeline.manifests.render import REPO_ROOT, Manifest, render
from pipeline.targets.kube import argocd
from pipeline.targets.kube.cluster import CLUSTER_NAME, Cluster
from pipeline.targets.kube.environment import (
    MONITORING_NAMESPACE,
    PROMETHEUS_PORT,
    PROMETHEUS_SERVICE,
    SERVICE,
    SERVICE_PORT,
    KubeEnvironment,
    port_forward_argv,
)
from pipeline.targets.kube.plan import Call, Command, Step, execute
from pipeline.targets.kube.source import git_source_mode, in_cluster_source, origin_source
from pipeline.targets.kube.versions import ARGOCD_VERSION
from pipeline.targets.kube.wait import wait_for_application

FIELD_MANAGER = "--field-manager=ml-gitops-pipeline"
SYNC_TIMEOUT_SECONDS = 600
#: A placeholder printed by a dry run when no build has run yet.
UNBUILT_IMAGE = "ml-inference:<build image_tag>"


class DryRunComplete(SystemExit):
    """Raised by `up` in a dry run once the plan is printed: the job ends here, successfully."""

    def __init__(self) -> None:
        super().__init__(0)


def build_image(context: RunContext) -> tuple[str, str]:
    """The build's image reference and its kustomize override (`ml-inference=<ref>`)."""
    outputs = read_outputs("build", context)
    tag = outputs.get("image_tag", "")
    if not tag:
        if context.dry_run:
            return UNBUILT_IMAGE, f"{argocd.SERVICE_IMAGE}={UNBUILT_IMAGE}"
        status = outputs.get("image_status") or "no build outputs"
        raise SystemExit(
            f"the build produced no image ({status}); kind/minikube deploy the image: run `nox -s build` "
            "on a machine with Docker first"
        )
    if tag.endswith(":latest") or ":" not in tag.rpartition("/")[2]:
        raise SystemExit(f"refusing to deploy {tag!r}: the image must be pinned to a tag, never :latest")
    digest = outputs.get("image_digest", "")
    # A digest only means something to a node when it names a registry's manifest.
    pinned = f"{tag}@{digest}" if digest.startswith("sha256:") and "/" in tag else tag
    return tag, f"{argocd.SERVICE_IMAGE}={pinned}"


def _repository(image: str) -> str:
    """`registry/name` of an image reference, without tag or digest."""
    name = image.partition("@")[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.partition(':')[0]}" if head else last.partition(":")[0]


def with_image(manifests: list[Manifest], image_override: str) -> list[Manifest]:
    """`manifests` with the service image replaced as Argo CD's kustomize override does (for the record)."""
    name, _, reference = image_override.partition("=")
    result = copy.deepcopy(manifests)
    for manifest in result:
        if manifest["kind"] == "Deployment":
            for container in manifest["spec"]["template"]["spec"]["containers"]:
                if _repository(container["image"]) == name:
                    container["image"] = reference
    return result


def _apply(kubectl: tuple[str, ...], objects: list[Manifest], why: str) -> Command:
    return Command(
        (*kubectl, "apply", "--server-side", FIELD_MANAGER, "-f", "-"), why, objects=tuple(objects)
    )


def _wait(cluster: Cluster, name: str, revision: str) -> Call:
    return Call(
        f"watch Application {argocd.ARGOCD_NAMESPACE}/{name} (kubernetes client watch) until it has synced "
        f"{revision[:12]} and is Healthy (timeout {SYNC_TIMEOUT_SECONDS}s)",
        lambda: print(
            wait_for_application(
                cluster.context, name, revision=revision, timeout_seconds=SYNC_TIMEOUT_SECONDS
            )
        ),
    )


def argocd_install(cluster: Cluster) -> list[Step]:
    """Argo CD's documented install for the pinned version, waited for by condition."""
    kubectl = cluster.kubectl
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": argocd.ARGOCD_NAMESPACE}}
    return [
        _apply(kubectl, [namespace], f"the {argocd.ARGOCD_NAMESPACE} namespace"),
        Command(
            argocd.install_argv(kubectl),
            f"install Argo CD {ARGOCD_VERSION} from its versioned manifest (server-side apply, per its docs)",
        ),
        Command(
            (
                *kubectl,
                "wait",
                "--for=condition=Established",
                "--timeout=120s",
                "crd/applications.argoproj.io",
                "crd/appprojects.argoproj.io",
            ),
            "wait until Argo CD's CRDs are served",
        ),
        Command(
            (
                *kubectl,
                "wait",
                "--for=condition=Available",
                "deployment",
                "--all",
                "-n",
                argocd.ARGOCD_NAMESPACE,
                "--timeout=600s",
            ),
            "wait until every Argo CD deployment is available",
        ),
        Command(
            (
                *kubectl,
                "rollout",
                "status",
                "statefulset/argocd-application-controller",
                "-n",
                argocd.ARGOCD_NAMESPACE,
                "--timeout=600s",
            ),
            "wait until the application controller runs",
        ),
    ]


@dataclass
class EnvironmentPlan:
    """Everything `up(env)` does, in order, plus what the environment will do afterwards."""

    setup: list[Step]
    environment: KubeEnvironment
    notes: list[str]

    def after_up(self) -> list[Command]:
        """Printed by the dry run: the port-forwards, then (demo) the drifts in the demo's order."""
        env = self.environment
        forwards = [
            Command(
                port_forward_argv(env.kubectl, env.namespace, f"service/{SERVICE}", SERVICE_PORT),
                "then: reach the service (kubectl chooses a free local port)",
            ),
            Command(
                port_forward_argv(
                    env.kubectl, MONITORING_NAMESPACE, f"service/{PROMETHEUS_SERVICE}", PROMETHEUS_PORT
                ),
                "then: reach Prometheus",
            ),
        ]
        return forwards + [command for _, command in env.drift_commands]


def drift_commands(
    kubectl: tuple[str, ...], namespace: str, desired: list[Manifest]
) -> list[tuple[str, Command]]:
    """The demo's hand-made changes outside Git; each must be undone by Argo CD's self-heal.

    Scaling is drift only where Git owns spec.replicas (no HPA), so it is left out elsewhere.
    """
    deployment = ("-n", namespace, f"deployment/{SERVICE}")
    drifts = [
        (
            "config-drift",
            Command(
                (*kubectl, "set", "env", *deployment, "ML_INFERENCE_LOG_LEVEL=debug"),
                "drift: change a setting on the Deployment by hand (log level info -> debug)",
            ),
        ),
        (
            "service-deleted",
            Command(
                (*kubectl, "delete", "service", SERVICE, "-n", namespace, "--wait=false"),
                "drift: delete the Service by hand",
            ),
        ),
    ]
    replicas = next((m["spec"].get("replicas") for m in desired if m["kind"] == "Deployment"), None)
    if replicas is not None and not any(m["kind"] == "HorizontalPodAutoscaler" for m in desired):
        drifts.insert(
            0,
            (
                "replica-count",
                Command(
                    (*kubectl, "scale", *deployment, f"--replicas={replicas + 2}"),
                    f"drift: scale the Deployment by hand ({replicas + 2} replicas; Git says {replicas})",
                ),
            ),
        )
    return drifts


def plan_environment(tool: str, env_name: str, context: RunContext) -> EnvironmentPlan:
    cluster = Cluster(tool)
    kubectl = cluster.kubectl
    image, image_override = build_image(context)
    rendered = render(REPO_ROOT / argocd.overlay_path(env_name))
    has_hpa = any(m["kind"] == "HorizontalPodAutoscaler" for m in rendered)
    steps: list[Step] = [
        cluster.check_version(),
        *cluster.create(),
        cluster.load_image(image),
        cluster.metrics_ready(),
        *argocd_install(cluster),
    ]
    notes: list[str] = []
    if git_source_mode() == "in-cluster":
        source, serve = in_cluster_source(image, kubectl)
        steps += serve
        notes.append(
            f"Argo CD reads a snapshot of this working tree ({source.revision[:12]}) from {source.repo_url}"
        )
    else:
        source, notes = origin_source(dry_run=context.dry_run)
        notes.append(f"Argo CD reads {source.repo_url} at {source.revision[:12]}")
    application = argocd.ml_inference_application(env_name, source, image_override, overlay_has_hpa=has_hpa)
    steps += [
        _apply(
            kubectl,
            [argocd.project(source)],
            "the AppProject: this repository, these namespaces, these kinds",
        ),
        # Prometheus first (wave 0), so it is there to scrape the service from its first request.
        _apply(kubectl, [argocd.observability_application(source)], "the observability Application (wave 0)"),
        _wait(cluster, "observability", source.revision),
        _apply(kubectl, [application], f"the {env_name} environment's Application (wave 1)"),
        _wait(cluster, application["metadata"]["name"], source.revision),
    ]
    namespace = argocd.environment_namespace(env_name)
    environment = KubeEnvironment(
        name=env_name,
        namespace=namespace,
        application=application["metadata"]["name"],
        kubectl=kubectl,
        context=cluster.context,
        drift_commands=drift_commands(kubectl, namespace, rendered),
        desired=with_image(rendered, image_override),
    )
    return EnvironmentPlan(steps, environment, notes)


@dataclass(frozen=True)
class KubeTarget:
    name: str

    def up(self, env_name: str, context: RunContext) -> KubeEnvironment:
        plan = plan_environment(self.name, env_name, context)
        for note in plan.notes:
            print(f"note: {note}", flush=True)
        execute(plan.setup, dry_run=context.dry_run)
        if context.dry_run:
            execute(plan.after_up(), dry_run=True)
            print(
                f"\ndry run: the plan above was printed, nothing was run ({self.name}, {env_name})",
                flush=True,
            )
            raise DryRunComplete
        plan.environment.connect()
        return plan.environment

    def down_all(self) -> list[str]:
        """Delete the cluster this project created (nothing else), if it exists."""
        cluster = Cluster(self.name)
        if not cluster.exists().holds():
            return []
        execute(
            [Command(cluster.delete_argv(), f"delete the {self.name} cluster {CLUSTER_NAME}")], dry_run=False
        )
        return [f"{self.name}/{CLUSTER_NAME}"]


def make_target(name: str) -> KubeTarget:
    if name not in ("kind", "minikube"):
        raise SystemExit(f"pipeline.targets.kube serves kind and minikube, not {name!r}")
    return KubeTarget(name)
