"""The kind and minikube targets: real Kubernetes, with Argo CD deploying from Git.

`up(env, release)` builds one plan (create the cluster if absent, load the release's image,
install Argo CD, apply the AppProjects and the root Application of the app of apps, add the
environment to the root, watch until Synced and Healthy) and executes it; `plan(env, release)`
returns the same plan as text, with the port-forwards and the demo's drift commands, touching no
cluster. Versions live in `pipeline.gitops.versions`.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass

from pipeline.context import RunContext
from pipeline.gitops import appofapps
from pipeline.gitops.render import REPO_ROOT, Manifest, render, to_yaml
from pipeline.gitops.source import git_source_mode, origin_source
from pipeline.gitops.versions import ARGOCD_VERSION
from pipeline.release import Release
from pipeline.targets.kube.api import custom_objects
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
from pipeline.targets.kube.git_server import in_cluster_source
from pipeline.targets.kube.plan import Call, Command, Step, execute
from pipeline.targets.kube.root import set_component
from pipeline.targets.kube.wait import wait_for_application

FIELD_MANAGER = "--field-manager=ml-gitops-pipeline"
SYNC_TIMEOUT_SECONDS = 600
#: A placeholder in a plan when no build has run yet.
UNBUILT_IMAGE = "ml-inference:<build image_tag>"


def build_image(release: Release, *, planning: bool = False) -> tuple[str, str]:
    """The release's image reference and its kustomize override (`ml-inference=<ref>`)."""
    tag = release.image_tag
    if not tag:
        if planning:
            return UNBUILT_IMAGE, f"{appofapps.SERVICE_IMAGE}={UNBUILT_IMAGE}"
        status = release.image_status or "no build outputs"
        raise SystemExit(
            f"the build produced no image ({status}); kind/minikube deploy the image: run `nox -s build` "
            "on a machine with Docker first"
        )
    if tag.endswith(":latest") or ":" not in tag.rpartition("/")[2]:
        raise SystemExit(f"refusing to deploy {tag!r}: the image must be pinned to a tag, never :latest")
    digest = release.image_digest
    # A digest only means something to a node when it names a registry's manifest.
    pinned = f"{tag}@{digest}" if digest.startswith("sha256:") and "/" in tag else tag
    return tag, f"{appofapps.SERVICE_IMAGE}={pinned}"


def _repository(image: str) -> str:
    """`registry/name` of an image reference, without tag or digest."""
    name = image.partition("@")[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.partition(':')[0]}" if head else last.partition(":")[0]


def with_images(manifests: list[Manifest], image_overrides: list[str]) -> list[Manifest]:
    """`manifests` with images replaced as an Application's kustomize `images` does (for the record)."""
    result = copy.deepcopy(manifests)
    for name, _, reference in (override.partition("=") for override in image_overrides):
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
        f"watch Application {appofapps.ARGOCD_NAMESPACE}/{name} (kubernetes client watch) until it has "
        f"synced {revision[:12]} and is Healthy (timeout {SYNC_TIMEOUT_SECONDS}s)",
        lambda: print(
            wait_for_application(
                cluster.context, name, revision=revision, timeout_seconds=SYNC_TIMEOUT_SECONDS
            )
        ),
    )


def argocd_install(cluster: Cluster) -> list[Step]:
    """Argo CD's documented install for the pinned version, waited for by condition."""
    kubectl = cluster.kubectl
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": appofapps.ARGOCD_NAMESPACE}}
    return [
        _apply(kubectl, [namespace], f"the {appofapps.ARGOCD_NAMESPACE} namespace"),
        Command(
            appofapps.install_argv(kubectl),
            f"install Argo CD {ARGOCD_VERSION} from its versioned manifest (server-side apply, per its docs)",
        ),
        _apply(
            kubectl,
            [appofapps.application_health()],
            "give Applications a health (argocd-cm), so the root syncs wave by wave on its children's health",
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
                appofapps.ARGOCD_NAMESPACE,
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
                appofapps.ARGOCD_NAMESPACE,
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
    #: The child Applications Argo CD renders from the root once this environment has joined.
    children: list[Manifest]

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


def _join(cluster: Cluster, env_name: str) -> Call:
    component = appofapps.environment_component(env_name)
    return Call(
        f"add {component} to Application {appofapps.ARGOCD_NAMESPACE}/{appofapps.ROOT_APPLICATION} "
        "spec.source.kustomize.components (kubernetes client: read, then replace at that resourceVersion, "
        f"again on a 409 Conflict), so Argo CD creates Application {appofapps.application_name(env_name)}",
        lambda: print(set_component(custom_objects(cluster.context), component, present=True)),
    )


def plan_environment(tool: str, env_name: str, release: Release, *, planning: bool) -> EnvironmentPlan:
    cluster = Cluster(tool)
    kubectl = cluster.kubectl
    component = appofapps.environment_component(env_name)
    image, image_override = build_image(release, planning=planning)
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
        source, notes = origin_source(dry_run=planning)
        notes.append(f"Argo CD reads {source.repo_url} at {source.revision[:12]}")
    root = appofapps.root_application(source, image_override)
    children = appofapps.render_children(root, [component])
    application_name = appofapps.application_name(env_name)
    (application,) = [c for c in children if c["metadata"]["name"] == application_name]
    rendered = render(REPO_ROOT / application["spec"]["source"]["path"])
    steps += [
        _apply(
            kubectl,
            appofapps.projects(source),
            "the AppProjects: the root's (Applications in argocd, nothing else) and its children's "
            "(this repository, these namespaces, these kinds)",
        ),
        _apply(
            kubectl,
            [root],
            "the root Application (app of apps): observability (wave 0), then the environments that join",
        ),
        # The shared observability child, not the root: the root is Healthy only when every
        # environment is, and another job's (a demo mid-drift) must not hold this one up.
        _wait(cluster, appofapps.OBSERVABILITY_APPLICATION, source.revision),
        _join(cluster, env_name),
        _wait(cluster, application_name, source.revision),
    ]
    namespace = application["spec"]["destination"]["namespace"]
    images = application["spec"]["source"].get("kustomize", {}).get("images", [])
    environment = KubeEnvironment(
        name=env_name,
        namespace=namespace,
        application=application_name,
        kubectl=kubectl,
        context=cluster.context,
        drift_commands=drift_commands(kubectl, namespace, rendered),
        desired=with_images(rendered, images),
        target=tool,
    )
    return EnvironmentPlan(steps, environment, notes, children)


@dataclass(frozen=True)
class KubeTarget:
    name: str

    def up(self, env_name: str, release: Release, context: RunContext) -> KubeEnvironment:
        """Execute the plan, then connect to the environment."""
        plan = plan_environment(self.name, env_name, release, planning=False)
        for note in plan.notes:
            print(f"note: {note}", flush=True)
        execute(plan.setup, dry_run=False)
        plan.environment.connect()
        return plan.environment

    def plan(self, env_name: str, release: Release, context: RunContext) -> str:
        """Every command and object `up` would apply, then what Argo CD renders and the job does."""
        plan = plan_environment(self.name, env_name, release, planning=True)
        text = io.StringIO()
        for note in plan.notes:
            print(f"note: {note}", file=text)
        execute(plan.setup, dry_run=True, out=text)
        print(
            "\n# then Argo CD renders the root's source into these child Applications:\n"
            f"{to_yaml(plan.children).rstrip()}",
            file=text,
        )
        execute(plan.after_up(), dry_run=True, out=text)
        print(f"\ndry run: the plan above was printed, nothing was run ({self.name}, {env_name})", file=text)
        return text.getvalue()

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
