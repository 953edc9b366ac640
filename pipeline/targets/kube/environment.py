"""One environment on kind/minikube: an Argo CD Application and its namespace.

Reads status from the Application (the GitOps controller's own view), reaches the service through
its NodePort and the replicas and Prometheus through `kubectl port-forward`, causes the demo's
drifts with kubectl, and saves the environment's state through `redact`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.artifacts import write_json_atomic
from pipeline.contracts import ClusterStatus, encode
from pipeline.gitops.appofapps import ARGOCD_NAMESPACE, ROOT_APPLICATION, environment_component
from pipeline.gitops.render import to_yaml
from pipeline.release import ControllerStatus, Drift, Observation
from pipeline.targets import summarize_prometheus_targets
from pipeline.targets.kube.api import application_events, core_v1, custom_objects, read_application
from pipeline.targets.kube.plan import Call, Command, StepFailed, execute, run_process
from pipeline.targets.kube.redact import redact
from pipeline.targets.kube.root import set_component
from pipeline.timestamps import utc_now

SERVICE = "ml-inference"
SERVICE_SELECTOR = f"app.kubernetes.io/name={SERVICE}"
#: The shared Prometheus, port-forwarded: its namespace, resource and port.
PROMETHEUS = ("monitoring", "service/prometheus", 9090)
#: What `kubectl port-forward` prints once it listens.
FORWARDING = re.compile(r"Forwarding from (127\.0\.0\.1:\d+)")
#: The first address `docker port` (127.0.0.1:PORT) or `minikube service --url` (a URL) prints.
ADDRESS = re.compile(r"(https?://\S+|\d{1,3}(?:\.\d{1,3}){3}:\d+)")
ADDRESS_TIMEOUT_SECONDS = 30
CONTAINER_PORT = 8080
#: How many of each container's last log lines a saved state keeps.
LOG_TAIL_LINES = 200
#: The setting the demo's config drift changes on the Deployment, and observed() reads back.
DRIFTED_SETTING = "ML_INFERENCE_LOG_LEVEL"
STATE_KINDS = (
    "deployments,replicasets,services,serviceaccounts,horizontalpodautoscalers,poddisruptionbudgets,"
    "networkpolicies,configmaps"
)


def save_container_logs(context: str, namespace: str, directory: Path) -> None:
    """The last LOG_TAIL_LINES of every container of `namespace`'s pods, scrubbed, in logs/<pod>/.

    Init containers too, and the previous instance of a container that restarted (a crash
    loop's current one may not have started). A log that cannot be read says why in its file.
    """
    try:
        api = core_v1(context)
        pods = api.list_namespaced_pod(namespace).items
    except Exception as error:  # no kubeconfig (ConfigException), ApiException or urllib3's errors
        (directory / "logs").mkdir(parents=True, exist_ok=True)
        (directory / "logs" / "error.txt").write_text(redact(f"listing the pods of {namespace}: {error}\n"))
        return
    for pod in pods:
        restarts = {s.name: s.restart_count for s in (pod.status and pod.status.container_statuses) or []}
        spec = pod.spec
        containers = [*(spec.init_containers or []), *(spec.containers or [])] if spec else []
        pod_directory = directory / "logs" / pod.metadata.name
        pod_directory.mkdir(parents=True, exist_ok=True)
        for container in containers:
            instances = [("", False)] + ([(".previous", True)] if restarts.get(container.name) else [])
            for suffix, previous in instances:
                try:
                    text = api.read_namespaced_pod_log(
                        pod.metadata.name,
                        namespace,
                        container=container.name,
                        tail_lines=LOG_TAIL_LINES,
                        previous=previous,
                    )
                except Exception as error:
                    text = f"could not read this log: {error}\n"
                (pod_directory / f"{container.name}{suffix}.log").write_text(redact(text))


def application_status(application: dict[str, Any] | None) -> ControllerStatus:
    status = (application or {}).get("status", {})
    return ControllerStatus(
        sync=status.get("sync", {}).get("status", "OutOfSync"),
        health=status.get("health", {}).get("status", "Missing"),
    )


def port_forward_argv(kubectl: tuple[str, ...], namespace: str, resource: str, port: int) -> tuple[str, ...]:
    """kubectl picks a free local port (`:port`) on 127.0.0.1 only."""
    return (*kubectl, "port-forward", "--address", "127.0.0.1", "-n", namespace, resource, f":{port}")


class StatusWatch:
    """An Application's status from a watch, every change kept in order (no change is missed).

    `status()` hands out the changes one by one, oldest first, then the latest again: a reader
    that looks every 0.1 s still sees a sub-second OutOfSync blip that a `kubectl get` would miss.
    """

    FIRST_EVENT_SECONDS = 10

    def __init__(self, events: Callable[[int], Any]) -> None:
        self._events = events
        self._changes: queue.Queue[ControllerStatus] = queue.Queue()
        self._last: ControllerStatus | None = None
        self._queued: ControllerStatus | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _follow(self) -> None:
        while not self._stopped.is_set():
            opened = time.monotonic()
            try:
                for event in self._events(60):
                    status = application_status(event.get("object"))
                    if status != self._queued:
                        self._queued = status
                        self._changes.put(status)
                    if self._stopped.is_set():
                        return
            except Exception as error:  # a dropped watch is re-opened
                print(f"status watch: {error}; re-opening", flush=True)
            if time.monotonic() - opened < 1:
                self._stopped.wait(1)

    def status(self) -> ControllerStatus:
        with contextlib.suppress(queue.Empty):
            self._last = self._changes.get(timeout=0.05 if self._last else self.FIRST_EVENT_SECONDS)
        return self._last or application_status(None)


class KeptProcess:
    """A child process that prints the address it serves, kept running until `stop`.

    `kubectl port-forward` serves its address while it runs; so does `minikube service --url`
    with the Docker driver on macOS and Windows, where it holds a tunnel in the foreground. A
    command that prints and exits (`docker port`, minikube elsewhere) is read the same way.
    """

    def __init__(self, argv: tuple[str, ...], address: re.Pattern[str] = ADDRESS) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(lines,), daemon=True).start()
        deadline = time.monotonic() + ADDRESS_TIMEOUT_SECONDS
        seen = []
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:  # the command exited
                break
            seen.append(line.strip())
            if match := address.search(line):
                found = match.group(1)
                self.url = found if "://" in found else f"http://{found}"
                return
        self.stop()
        raise StepFailed(f"{' '.join(argv)} printed no address: {' '.join(seen) or 'no output'}")

    def _pump(self, lines: queue.Queue[str | None]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            lines.put(line)
        lines.put(None)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class KubeEnvironment:
    name: str
    namespace: str
    application: str
    kubectl: tuple[str, ...]
    context: str
    desired: list[dict[str, Any]]
    #: "kind" or "minikube".
    target: str
    endpoint: str = ""
    prometheus_url: str | None = None
    #: Which image reference runs and how it reached the nodes (status.json `image`).
    image: dict[str, str] = field(default_factory=dict)
    #: The command that prints the service's URL through the path a real client uses (NodePort).
    endpoint_argv: tuple[str, ...] = ()
    _forwards: list[KeptProcess] = field(default_factory=list)
    #: Each ready pod's port-forward by pod name, opened the first time its URL is asked.
    _pod_forwards: dict[str, KeptProcess] = field(default_factory=dict)
    _watch: StatusWatch | None = None

    @property
    def prometheus_selector(self) -> dict[str, str]:
        """Test and demo share one Prometheus, whose config labels every series with its pod's namespace."""
        return {"namespace": self.namespace}

    def connect(self) -> None:
        """Find the service's NodePort URL (the load's path), open Prometheus' port-forward, watch status."""
        self.endpoint = self._keep(KeptProcess(self.endpoint_argv))
        self._watch = StatusWatch(application_events(self.context, self.application))
        self._watch.start()
        try:
            forward = port_forward_argv(self.kubectl, *PROMETHEUS)
            self.prometheus_url = self._keep(KeptProcess(forward, FORWARDING))
        except StepFailed as error:
            print(f"Prometheus is not reachable ({error}); metrics will be read from the replicas directly")

    def _keep(self, process: KeptProcess) -> str:
        self._forwards.append(process)
        return process.url

    def after_up(self, *, drifts: bool) -> list[Command]:
        """Printed by the dry run: what `connect` runs, then (`drifts`) the drifts in the demo's order."""
        return [
            Command(
                self.endpoint_argv,
                "then: the service's URL through its NodePort: the load's path (no port-forward)",
            ),
            Command(port_forward_argv(self.kubectl, *PROMETHEUS), "then: reach Prometheus"),
            *(command for _, command in (self.drift_commands() if drifts else [])),
        ]

    def _kubectl_json(self, *args: str) -> Any:
        result = run_process([*self.kubectl, *args, "-o", "json"], None, 60)
        if result.returncode != 0:
            raise StepFailed(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return json.loads(result.stdout)

    def _application(self) -> dict[str, Any] | None:
        try:
            return self._kubectl_json(
                "get", "applications.argoproj.io", self.application, "-n", ARGOCD_NAMESPACE
            )
        except StepFailed:
            return None

    def replica_urls(self) -> list[str]:
        """Each ready pod's URL through a port-forward of its own, kept until `down` (or its end)."""
        pods = self._kubectl_json("get", "pods", "-n", self.namespace, "-l", SERVICE_SELECTOR)
        urls = []
        for pod in pods["items"]:
            conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
            if conditions.get("Ready") != "True":
                continue
            name = pod["metadata"]["name"]
            forward = self._pod_forwards.get(name)
            if forward is None or forward.process.poll() is not None:
                argv = port_forward_argv(self.kubectl, self.namespace, f"pod/{name}", CONTAINER_PORT)
                forward = self._pod_forwards[name] = KeptProcess(argv, FORWARDING)
                self._forwards.append(forward)
            urls.append(forward.url)
        return urls

    def status(self) -> ControllerStatus:
        """From the status watch once connected (every change in order), else one read."""
        if self._watch is not None:
            return self._watch.status()
        return application_status(self._application())

    def drift_commands(self) -> list[tuple[str, Command]]:
        """The demo's hand-made changes outside Git; each must be undone by Argo CD's self-heal.

        Scaling is drift only where Git owns spec.replicas (no HPA), so it is left out elsewhere.
        """
        deployment = ("-n", self.namespace, f"deployment/{SERVICE}")
        set_env = Command(
            (*self.kubectl, "set", "env", *deployment, f"{DRIFTED_SETTING}=debug"),
            "drift: change a setting on the Deployment by hand (log level info -> debug)",
        )
        delete = Command(
            (*self.kubectl, "delete", "service", SERVICE, "-n", self.namespace, "--wait=false"),
            "drift: delete the Service by hand",
        )
        drifts = [("config-drift", set_env), ("service-deleted", delete)]
        replicas = next((m["spec"].get("replicas") for m in self.desired if m["kind"] == "Deployment"), None)
        if replicas is None or any(m["kind"] == "HorizontalPodAutoscaler" for m in self.desired):
            return drifts
        scale = Command(
            (*self.kubectl, "scale", *deployment, f"--replicas={replicas + 2}"),
            f"drift: scale the Deployment by hand ({replicas + 2} replicas; Git says {replicas})",
        )
        return [("replica-count", scale), *drifts]

    def drifts(self) -> list[Drift]:
        return [
            Drift(name, command.why, functools.partial(execute, [command], dry_run=False))
            for name, command in self.drift_commands()
        ]

    def observed(self) -> Observation:
        """The live Deployment: its replica count (spec: a scale by hand shows at once), its ready
        pods, and DRIFTED_SETTING in its pod template."""
        deployment = self._kubectl_json("get", "deployment", SERVICE, "-n", self.namespace)
        status = deployment.get("status", {})
        containers = deployment["spec"]["template"]["spec"]["containers"]
        values = [
            variable.get("value", "")
            for container in containers
            if container["name"] == SERVICE
            for variable in container.get("env", [])
            if variable["name"] == DRIFTED_SETTING
        ]
        return Observation(
            replicas=deployment["spec"].get("replicas", 1),
            ready_replicas=status.get("readyReplicas", 0),
            config={DRIFTED_SETTING: values or ["<unset>"]},
        )

    def save_state(self, directory: Path) -> None:
        """Desired and live resources, the Applications (status and history), events, pods and the
        containers' last log lines, scrubbed."""
        directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(directory / "status.json", encode(ClusterStatus, redact(self.status_summary())))
        (directory / "manifests.yaml").write_text(to_yaml(redact(self.desired)))
        collected = {
            "application.json": self._application,
            # The app of apps: which environments this cluster holds, and its sync history.
            "root-application.json": lambda: self._kubectl_json(
                "get", "applications.argoproj.io", ROOT_APPLICATION, "-n", ARGOCD_NAMESPACE
            ),
            "resources.json": lambda: self._kubectl_json("get", STATE_KINDS, "-n", self.namespace),
            "pods.json": lambda: [
                _pod_summary(p) for p in self._kubectl_json("get", "pods", "-n", self.namespace)["items"]
            ],
        }
        for filename, collect in collected.items():
            try:
                write_json_atomic(directory / filename, redact(collect()))
            except StepFailed as error:
                write_json_atomic(directory / filename, {"error": redact(str(error))})
        events = []
        for namespace in (self.namespace, ARGOCD_NAMESPACE):
            try:
                events += self._kubectl_json("get", "events", "-n", namespace)["items"]
            except StepFailed as error:
                events.append({"error": str(error)})
        with open(directory / "events.jsonl", "w") as handle:
            for event in events:
                handle.write(json.dumps(redact(event), sort_keys=True, default=str) + "\n")
        save_container_logs(self.context, self.namespace, directory)

    def status_summary(self) -> dict[str, Any]:
        """status.json (the report's deploy state): Argo CD's view of the Application and its pods.

        Read through the kubernetes client; what cannot be read is named in `errors`, so a cluster
        that stopped answering still leaves a status (Missing) rather than no file.
        """
        errors: list[str] = []
        try:
            application = read_application(self.context, self.application)
        except Exception as error:  # the client raises ApiException or urllib3's errors
            application = None
            errors.append(f"Application {ARGOCD_NAMESPACE}/{self.application}: {error}")
        try:
            api = core_v1(self.context)
            pods = api.list_namespaced_pod(self.namespace, label_selector=SERVICE_SELECTOR).items
        except Exception as error:
            pods = []
            errors.append(f"pods in {self.namespace}: {error}")
        status = application_status(application)
        sync = (application or {}).get("status", {}).get("sync", {})
        return {
            "target": self.target,
            "environment": self.name,
            "namespace": self.namespace,
            "application": self.application,
            "endpoint": self.endpoint or None,
            "image": self.image or None,
            "sync": status.sync,
            "health": status.health,
            "revision": sync.get("revision"),
            "replicas": [_replica(pod) for pod in pods],
            "prometheus": {"url": self.prometheus_url, "targets": self._prometheus_targets(errors)}
            if self.prometheus_url
            else None,
            "errors": errors,
            "observed_at": utc_now(),
        }

    def _prometheus_targets(self, errors: list[str]) -> list[dict[str, Any]]:
        """This environment's scrape targets in the shared Prometheus (those its selector matches)."""
        try:
            with urllib.request.urlopen(f"{self.prometheus_url}/api/v1/targets?state=active", timeout=5) as r:
                active = json.load(r)["data"]["activeTargets"]
        except (OSError, ValueError, KeyError) as error:
            errors.append(f"GET {self.prometheus_url}/api/v1/targets: {error}")
            return []
        return summarize_prometheus_targets(active, self.prometheus_selector)

    def down(self) -> None:
        """Close the port-forwards and take the environment out of the root Application.

        Argo CD then prunes its Application, whose resources finalizer deletes what it deployed
        (deleting the Application directly would not last: the root's self-heal recreates it).
        """
        for forward in self._forwards:
            forward.stop()
        self._forwards.clear()
        self._pod_forwards.clear()
        if self._watch is not None:
            self._watch.stop()
        if os.environ.get("GITHUB_ACTIONS") == "true":  # the runner is thrown away with its cluster
            print(
                f"{self.name}: no teardown on an ephemeral runner (GITHUB_ACTIONS): the cluster goes with it"
            )
            return
        component = environment_component(self.name)
        prune = ("--for=delete", f"applications.argoproj.io/{self.application}", "-n", ARGOCD_NAMESPACE)
        leave = Call(
            f"remove {component} from Application {ARGOCD_NAMESPACE}/{ROOT_APPLICATION} "
            "spec.source.kustomize.components (read, then replace at that resourceVersion)",
            lambda: print(set_component(custom_objects(self.context), component, present=False)),
        )
        wait = Command(
            (*self.kubectl, "wait", *prune, "--timeout=300s"),
            f"wait until Argo CD has pruned {self.application} (its finalizer deletes its resources)",
        )
        namespace = ("namespace", self.namespace, "--ignore-not-found", "--wait=true", "--timeout=180s")
        delete = Command((*self.kubectl, "delete", *namespace), f"delete the {self.namespace} namespace")
        execute([leave, wait, delete], dry_run=False)


def _replica(pod: Any) -> dict[str, Any]:
    """One pod as a replica of status.json; `url` is its address inside the cluster (like a pod IP)."""
    conditions = {c.type: c.status for c in pod.status.conditions or []}
    return {
        "name": pod.metadata.name,
        "url": f"http://{pod.status.pod_ip}:{CONTAINER_PORT}" if pod.status.pod_ip else None,
        "ready": conditions.get("Ready") == "True",
        "phase": pod.status.phase,
        "restarts": sum(c.restart_count for c in pod.status.container_statuses or []),
    }


def _pod_summary(pod: dict[str, Any]) -> dict[str, Any]:
    status = pod.get("status", {})
    containers = status.get("containerStatuses", [])
    return {
        "name": pod["metadata"]["name"],
        "phase": status.get("phase"),
        "ready": all(c.get("ready") for c in containers) if containers else False,
        "restarts": sum(c.get("restartCount", 0) for c in containers),
        "node": pod.get("spec", {}).get("nodeName"),
        "images": [c.get("image") for c in pod.get("spec", {}).get("containers", [])],
        "started_at": status.get("startTime"),
        "observed_at": utc_now(),
    }
