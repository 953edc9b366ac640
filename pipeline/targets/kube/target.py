"""The kind and minikube targets: real Kubernetes, with Argo CD deploying from Git.

`up(env, release)` builds one plan (create the cluster if absent, load the release's image,
install Argo CD, apply the AppProjects and the root Application of the app of apps, add the
environment to the root, watch until Synced and Healthy) and executes it; `plan(env, release)`
returns the same plan as text, with the port-forwards and the demo's drift commands, touching no
cluster. Versions live in `pipeline.gitops.versions`.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

from pipeline.context import RunContext
from pipeline.gitops import appofapps
from pipeline.gitops.appofapps import ARGOCD_NAMESPACE
from pipeline.gitops.render import Manifest, to_yaml
from pipeline.gitops.source import git_source_mode, origin_source
from pipeline.gitops.versions import ARGOCD_INSTALL_URL, ARGOCD_VERSION
from pipeline.graph import JOBS_BY_NAME
from pipeline.release import Release
from pipeline.targets.kube.api import custom_objects
from pipeline.targets.kube.cluster import CLUSTER_NAME, NODE_PORTS, Cluster
from pipeline.targets.kube.environment import SERVICE, KubeEnvironment
from pipeline.targets.kube.git_server import in_cluster_source
from pipeline.targets.kube.plan import Call, Command, Step, apply, execute
from pipeline.targets.kube.root import set_component
from pipeline.targets.kube.wait import wait_for_application

SYNC_TIMEOUT_SECONDS = 600
#: Argo CD's self-heal backoff (argocd-cmd-params-cm). Its default waits 2 s, then x3, capped at
#: 300 s, and since 3.3 the count does not reset for the same revision: heals wait 0, 2, 6, 18,
#: 54 s. The demo heals several drifts, each within 30 s, on the same revision (a kept cluster
#: more), so heals wait 1 s each, every time.
SELF_HEAL_BACKOFF = {
    "controller.self.heal.backoff.timeout.seconds": "1",
    "controller.self.heal.backoff.factor": "1",
    "controller.self.heal.backoff.cap.seconds": "2",
}
PULL_POLICY = "Never"
#: The annotation on the controller's pod template that restarts it when the backoff changes.
CMD_PARAMS_ANNOTATION = "ml-gitops.dev/cmd-params-sha256"
#: A placeholder in a plan when no build has run yet.
UNBUILT_IMAGE = "ml-inference:<build image_tag>"


def build_image(release: Release, *, planning: bool = False) -> tuple[str, str]:
    """The release's image reference and its kustomize override (`ml-inference=<ref>`)."""
    tag = release.image_tag
    if not tag or release.image_status == "failed":  # a failed build names the tag it never applied
        if planning:
            return UNBUILT_IMAGE, f"{appofapps.SERVICE_IMAGE}={UNBUILT_IMAGE}"
        status = release.image_status or "no build outputs"
        raise SystemExit(
            f"the build produced no image ({status}); kind/minikube deploy the image: run `nox -s build` "
            "on a machine with Docker first"
        )
    if tag.endswith(":latest") or ":" not in tag.rpartition("/")[2]:
        raise SystemExit(f"refusing to deploy {tag!r}: the image must be pinned to a tag, never :latest")
    # Exactly what was loaded: the content tag. A registry digest does not survive `docker save`
    # and load (moby#22011, kind#2734), and containerd looks a digest up by digest alone, so
    # `tag@digest` would never find the loaded copy and the node would pull from the registry.
    return tag, f"{appofapps.SERVICE_IMAGE}={tag}"


def workload_patches() -> list[Manifest]:
    """Run the loaded image only: a missing one fails fast (ErrImageNeverPull), nothing is pulled."""
    path = "/spec/template/spec/containers/0/imagePullPolicy"
    pull_policy = {"op": "replace", "path": path, "value": PULL_POLICY}
    return [appofapps.json_patch({"kind": "Deployment", "name": SERVICE}, [pull_policy])]


NETWORK_POLICY = "ml-inference"
#: What a NodePort brings in comes from outside the pod network (the host, through kind's port
#: mapping), which kind's and minikube's kindnet judge by address: admitted on the service port only.
NODE_PORT_INGRESS = {
    "from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
    "ports": [{"port": "http", "protocol": "TCP"}],
}


def node_port_patches() -> dict[str, list[Manifest]]:
    """Each environment's Service as a NodePort of its own (the load's path; no port-forward), and
    its NetworkPolicy admitting what comes through it."""
    return {
        env_name: [
            appofapps.json_patch(
                {"kind": "Service", "name": SERVICE},
                [
                    {"op": "replace", "path": "/spec/type", "value": "NodePort"},
                    {"op": "add", "path": "/spec/ports/0/nodePort", "value": port},
                ],
            ),
            appofapps.json_patch(
                {"kind": "NetworkPolicy", "name": NETWORK_POLICY},
                [{"op": "add", "path": "/spec/ingress/-", "value": NODE_PORT_INGRESS}],
            ),
        ]
        for env_name, port in NODE_PORTS.items()
    }


def _wait(cluster: Cluster, name: str, revision: str, namespace: str | None = None) -> Call:
    return Call(
        f"watch Application {ARGOCD_NAMESPACE}/{name} (kubernetes client watch) until it has "
        f"synced {revision[:12]} and is Healthy (timeout {SYNC_TIMEOUT_SECONDS}s; fails at once on a "
        "ComparisonError, pods in ImagePullBackOff/ErrImagePull/ErrImageNeverPull/CrashLoopBackOff, "
        "or Degraded over 120s, naming the conditions of the Application that blocks)",
        lambda: print(
            wait_for_application(
                cluster.context,
                name,
                revision=revision,
                timeout_seconds=SYNC_TIMEOUT_SECONDS,
                namespace=namespace,
            )
        ),
    )


def argocd_install(cluster: Cluster) -> list[Step]:
    """Argo CD's documented install for the pinned version, waited for by condition."""
    kubectl, argocd = cluster.kubectl, ("-n", ARGOCD_NAMESPACE)
    controller = "argocd-application-controller"
    crds = ("crd/applications.argoproj.io", "crd/appprojects.argoproj.io")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ARGOCD_NAMESPACE}}
    labels = {"app.kubernetes.io/name": "argocd-cmd-params-cm", "app.kubernetes.io/part-of": "argocd"}
    cmd_params = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cmd-params-cm", "namespace": ARGOCD_NAMESPACE, "labels": labels},
        "data": dict(SELF_HEAL_BACKOFF),
    }
    digest = hashlib.sha256(json.dumps(SELF_HEAL_BACKOFF, sort_keys=True).encode()).hexdigest()
    restart = json.dumps(
        {"spec": {"template": {"metadata": {"annotations": {CMD_PARAMS_ANNOTATION: digest}}}}}
    )
    return [
        apply(kubectl, [namespace], f"the {ARGOCD_NAMESPACE} namespace"),
        apply(
            kubectl,
            [cmd_params],
            "the self-heal backoff the demo needs (argocd-cmd-params-cm), before the install so a new "
            "controller starts with it",
        ),
        Command(
            (*kubectl, "apply", *argocd, "--server-side", "--force-conflicts", "-f", ARGOCD_INSTALL_URL),
            f"install Argo CD {ARGOCD_VERSION} from its versioned manifest (server-side apply, per its docs)",
        ),
        Command(
            (*kubectl, "patch", "statefulset", controller, *argocd, "--type", "merge", "-p", restart),
            "the controller reads argocd-cmd-params-cm only at start (env from configMapKeyRef): annotate "
            "its pod template with the settings' hash, which restarts it only when they changed",
        ),
        apply(
            kubectl,
            [appofapps.application_health()],
            "give Applications a health (argocd-cm), so the root syncs wave by wave on its children's health",
        ),
        Command(
            (*kubectl, "wait", "--for=condition=Established", "--timeout=120s", *crds),
            "wait until Argo CD's CRDs are served",
        ),
        Command(
            (*kubectl, "wait", "--for=condition=Available", "deployment", "--all", *argocd, "--timeout=600s"),
            "wait until every Argo CD deployment is available",
        ),
        Command(
            (*kubectl, "rollout", "status", f"statefulset/{controller}", *argocd, "--timeout=600s"),
            "wait until the application controller runs",
        ),
    ]


@dataclass
class EnvironmentPlan:
    """Everything `up(env)` does, in order, plus what the environment will do afterwards."""

    setup: list[Step]
    environment: KubeEnvironment
    #: What a real run follows, one line each: image and pull policy, Git source, load path, backoff;
    #: then what the person should know before it runs (`note:` an unpushed commit, a dirty tree).
    summary: list[str]
    #: The child Applications Argo CD renders from the root once this environment has joined.
    children: list[Manifest]


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
        git_line = (
            f"git source: in-cluster git server serving {source.revision} at {source.repo_url} "
            "(a snapshot of this working tree; no credential reaches the cluster)"
        )
    else:
        source, notes = origin_source(dry_run=planning)
        git_line = f"git source: {source.repo_url} at {source.revision} (origin)"
    root = appofapps.root_application(source, image_override, workload_patches(), node_port_patches())
    children = appofapps.render_children(root, [component])
    application_name = appofapps.application_name(env_name)
    (application,) = [c for c in children if c["metadata"]["name"] == application_name]
    namespace = application["spec"]["destination"]["namespace"]
    rendered = appofapps.render_application(application)
    steps += [
        apply(
            kubectl,
            appofapps.projects(source),
            "the AppProjects: the root's (Applications in argocd, and Prometheus' read-only cluster "
            "RBAC by name) and its children's (this repository, these namespaces, these kinds; "
            "no cluster-scoped RBAC)",
        ),
        apply(
            kubectl,
            [root],
            "the root Application (app of apps): observability (wave 0), then the environments that join",
        ),
        # The shared observability child, not the root: the root is Healthy only when every
        # environment is, and another job's (a demo mid-drift) must not hold this one up.
        _wait(
            cluster, appofapps.OBSERVABILITY_APPLICATION, source.revision, appofapps.observability_namespace()
        ),
        Call(
            f"add {component} to Application {ARGOCD_NAMESPACE}/{appofapps.ROOT_APPLICATION} "
            "spec.source.kustomize.components (kubernetes client: read, then replace at that "
            f"resourceVersion, again on a 409 Conflict), so Argo CD creates Application {application_name}",
            lambda: print(set_component(custom_objects(cluster.context), component, present=True)),
        ),
        _wait(cluster, application_name, source.revision, namespace),
    ]
    endpoint_argv = cluster.endpoint_argv(env_name, namespace)
    node_port = NODE_PORTS[env_name]
    # A kind cluster's host ports are picked when it is created: a kept one's are read back.
    if tool == "kind" and not cluster.exists().holds():
        mappings = cluster.kind_config["nodes"][0]["extraPortMappings"]
        port = next(m["hostPort"] for m in mappings if m["containerPort"] == node_port)
        load_line = (
            f"load path: http://127.0.0.1:{port} (NodePort {node_port} via kind extraPortMappings on "
            f"127.0.0.1, a port free when the cluster is created; read back with `{' '.join(endpoint_argv)}`)"
        )
    else:
        load_line = f"load path: the URL `{' '.join(endpoint_argv)}` prints (NodePort {node_port})"
    image_line = (
        f"image: {image} (loaded with `{cluster.load_method}`, imagePullPolicy {PULL_POLICY}: a missing "
        "image fails fast with ErrImageNeverPull; nothing is pulled from a registry)"
    )
    backoff = ", ".join(f"{key}={value}" for key, value in SELF_HEAL_BACKOFF.items())
    backoff_line = (
        f"self-heal backoff: {backoff} (argocd-cmd-params-cm; the controller restarts when it changes)"
    )
    environment = KubeEnvironment(
        name=env_name,
        namespace=namespace,
        application=application_name,
        kubectl=kubectl,
        context=cluster.context,
        desired=rendered,
        target=tool,
        image={"reference": image, "source": cluster.load_method, "pull_policy": PULL_POLICY},
        endpoint_argv=endpoint_argv,
    )
    summary = [image_line, git_line, load_line, backoff_line, *(f"note: {note}" for note in notes)]
    return EnvironmentPlan(steps, environment, summary, children)


@dataclass(frozen=True)
class KubeTarget:
    name: str

    def up(self, env_name: str, release: Release, context: RunContext) -> KubeEnvironment:
        """Execute the plan, then connect to the environment."""
        plan = plan_environment(self.name, env_name, release, planning=False)
        print(*plan.summary, sep="\n", flush=True)
        try:
            execute(plan.setup, dry_run=False)
            plan.environment.connect()
        except Exception:
            # Before the failure fails the job: the environment's state, scrubbed, in its job's artifact.
            job = JOBS_BY_NAME.get(env_name)
            artifact = str(job.artifact) if job else "cluster-state"
            directory = context.artifacts_dir / artifact / "failed-bring-up"
            try:
                plan.environment.save_state(directory)
                print(f"state of the failed bring-up saved (scrubbed) in {directory}", flush=True)
            except Exception as error:  # the bring-up's error is the one to report
                print(f"saving the state of the failed bring-up failed: {error}", flush=True)
            raise
        return plan.environment

    def plan(self, env_name: str, release: Release, context: RunContext) -> str:
        """Every command and object `up` would apply, then what Argo CD renders and the job does."""
        plan = plan_environment(self.name, env_name, release, planning=True)
        text = io.StringIO()
        print(f"# what a real run follows ({self.name}, {env_name}):", *plan.summary, sep="\n", file=text)
        execute(plan.setup, dry_run=True, out=text)
        print(
            "\n# then Argo CD renders the root's source into these child Applications "
            "(and the cluster RBAC only the root's project may create):\n"
            f"{to_yaml(plan.children).rstrip()}",
            file=text,
        )
        # Only the demo job drifts its environment by hand.
        execute(plan.environment.after_up(drifts=env_name == "demo"), dry_run=True, out=text)
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
