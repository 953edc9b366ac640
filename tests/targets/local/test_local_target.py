"""The local target end to end: real replicas, a real reconciler, a real Prometheus, real drift.

One environment (with Prometheus) is shared by the module's read-mostly tests and the healing
drifts; tests that need healing off, a changing Git or a stale environment bring up small ones of
their own without Prometheus. Every environment lives under a temporary state root, so nothing
here touches the checkout's .pipeline/ or anyone else's environments.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pipeline.artifacts import read_json
from pipeline.checks import metrics
from pipeline.context import RunContext
from pipeline.gitops.render import render_text
from pipeline.jobs._environment import release_from_build
from pipeline.samples import predict_body
from pipeline.targets import get_target
from pipeline.targets.local import layout, target
from pipeline.targets.local.environment import REPLICA_LOG_LINES, LocalEnvironment
from pipeline.targets.local.target import OVERLAY, PROMETHEUS_CONFIG_DIR, LocalTarget, LocalTargetError
from tests.helpers import require_program
from tests.targets.local.reconciler_with_taken_ports import TAKEN_CHOICES, TAKEN_PORT_VARIABLE

REPO = Path(__file__).resolve().parents[3]
PREDICT_BODY = predict_body()
#: Bounds, not benchmarks: healing takes about a second here (see the README for measured times).
DETECT_TIMEOUT = 10.0
HEAL_TIMEOUT = 20.0
SECRET_VALUE = "local-target-test-secret-value"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `condition()` held; fails naming `what` after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def environment_processes(env: LocalEnvironment) -> list[psutil.Process]:
    """The reconciler, its whole tree, and every process labelled with the environment's id."""
    state = json.loads((env.state_dir / layout.STATE).read_text())
    environment_id, reconciler_pid = state["environment_id"], state["reconciler_pid"]
    found = {}
    try:
        reconciler = psutil.Process(reconciler_pid)
        found = {p.pid: p for p in [reconciler, *reconciler.children(recursive=True)]}
    except psutil.NoSuchProcess:
        pass
    for process in psutil.process_iter(["environ"]):
        if (process.info["environ"] or {}).get(layout.ENVIRONMENT_LABEL) == environment_id:
            found[process.pid] = process
    return list(found.values())


def assert_all_gone(processes: list[psutil.Process]) -> None:
    alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes left behind: {[(p.pid, p.cmdline()) for p in alive]}"


def live_replicas(env: LocalEnvironment) -> list[dict]:
    return [r for r in env.reconciler_status()["replicas"] if not r["terminating"]]


def edit(path: Path, old: str, new: str) -> None:
    """Change a file as a commit would; fails if Git's files no longer say `old`."""
    text = path.read_text()
    assert old in text, f"{path.name} no longer contains {old!r}"
    path.write_text(text.replace(old, new))


def read_events(env: LocalEnvironment) -> list[dict]:
    return [json.loads(line) for line in (env.state_dir / layout.EVENTS).read_text().splitlines()]


def git_replicas(overlay: Path = OVERLAY) -> int:
    deployment = next(d for d in yaml.safe_load_all(render_text(overlay)) if d and d["kind"] == "Deployment")
    return deployment["spec"]["replicas"]


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    """A run whose build job trained a real model."""
    from ml_inference.train import train

    artifacts = tmp_path_factory.mktemp("artifacts")
    train(artifacts / "build-output" / "model")
    return RunContext("local", "full", artifacts, "pytest", dry_run=False, keep=False)


@pytest.fixture(scope="module")
def state_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-state")


@pytest.fixture(scope="module")
def observability(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repo's observability/prometheus/, so a test can change it like a commit would."""
    copy = tmp_path_factory.mktemp("observability") / "prometheus"
    shutil.copytree(PROMETHEUS_CONFIG_DIR, copy)
    return copy


@pytest.fixture(scope="module")
def env(context: RunContext, state_root: Path, observability: Path):
    require_program("prometheus")
    os.environ["GITHUB_TOKEN"] = SECRET_VALUE  # must never reach the saved state
    try:
        environment = LocalTarget(state_root=state_root, prometheus_config_dir=observability).up(
            "shared", release_from_build(context), context
        )
    finally:
        del os.environ["GITHUB_TOKEN"]
    yield environment
    environment.down()


@pytest.fixture
def small_target(tmp_path: Path) -> LocalTarget:
    """A target of its own without Prometheus, for environments that test the reconciler alone."""
    return LocalTarget(state_root=tmp_path / "state", prometheus_config_dir=tmp_path / "no-prometheus")


def test_get_target_returns_the_local_target() -> None:
    assert isinstance(get_target("local"), LocalTarget)


@pytest.mark.slow
def test_up_serves_one_endpoint_that_the_kernel_balances_over_replicas(env: LocalEnvironment) -> None:
    with httpx.Client() as client:
        for _ in range(60):
            # A new connection each time: SO_REUSEPORT balances connections, not requests.
            response = client.post(
                f"{env.endpoint}/predict", json=PREDICT_BODY, headers={"Connection": "close"}
            )
            assert response.status_code == 200
            assert response.json()["prediction"] == "setosa"
        served = {}
        for url in env.replica_urls():
            metrics = client.get(f"{url}/metrics").text
            served[url] = sum(
                sample.value
                for family in text_string_to_metric_families(metrics)
                for sample in family.samples
                if sample.name == "ml_inference_requests_total" and sample.labels.get("route") == "/predict"
            )
    assert sum(served.values()) == 60
    assert sum(1 for count in served.values() if count > 0) >= 2, served


@pytest.mark.slow
def test_replicas_run_gits_desired_state_on_ports_of_their_own(env: LocalEnvironment) -> None:
    replicas = live_replicas(env)
    assert len(replicas) == git_replicas()
    ports = {r["port"] for r in replicas}
    assert len(ports) == len(replicas)
    endpoint_port = int(env.endpoint.rsplit(":", 1)[1])
    assert endpoint_port not in ports
    for replica in replicas:
        process = psutil.Process(replica["pid"])
        assert process.cmdline() == [sys.executable, "-m", "ml_inference", "serve"]
        environ = process.environ()
        assert environ["ML_INFERENCE_MAX_BATCH"] == "1000"  # from the Deployment's env in Git
        assert environ["ML_INFERENCE_HOST"] == "127.0.0.1"
        assert environ["ML_INFERENCE_SHARED_PORT"] == str(endpoint_port)
        assert environ["ML_INFERENCE_PORT"] == str(replica["port"])
        assert "GITHUB_TOKEN" not in environ  # replicas get Git's env, not the caller's
        assert httpx.get(f"{replica['url']}/ready").status_code == 200


@pytest.mark.slow
def test_prometheus_scrapes_every_replica(env: LocalEnvironment) -> None:
    assert env.prometheus_url is not None
    pods = {r["name"] for r in live_replicas(env)}

    def every_replica_up() -> bool:
        response = httpx.get(f"{env.prometheus_url}/api/v1/query", params={"query": 'up{job="ml-inference"}'})
        up = {s["metric"]["pod"] for s in response.json()["data"]["result"] if s["value"][1] == "1"}
        return pods <= up

    wait_for(every_replica_up, 20, "up == 1 for every replica")


@pytest.mark.slow
def test_prometheus_loads_the_repos_rules_and_reloads_them_when_they_change(
    env: LocalEnvironment, observability: Path
) -> None:
    def rule_groups() -> set[str]:
        response = httpx.get(f"{env.prometheus_url}/api/v1/rules")
        return {group["name"] for group in response.json()["data"]["groups"]}

    repo_groups = {
        group["name"]
        for rules in (observability / "rules").glob("*.yml")
        for group in yaml.safe_load(rules.read_text())["groups"]
    }
    assert repo_groups and repo_groups <= rule_groups()
    (observability / "rules" / "pytest-reload.yml").write_text(
        "groups:\n  - name: pytest-reload\n    rules:\n      - record: pytest:up:sum\n        expr: sum(up)\n"
    )
    wait_for(lambda: "pytest-reload" in rule_groups(), 15, "Prometheus to load the changed rules")


@pytest.mark.slow
def test_a_rule_prometheus_rejects_on_reload_is_reported_until_it_is_fixed(
    env: LocalEnvironment, observability: Path
) -> None:
    """Prometheus keeps its old rules when a reload fails: the edit must not read as applied."""

    def rejected() -> list[str] | None:
        return (read_json(env.state_dir / layout.STATUS) or {}).get("prometheus", {}).get("config_rejected")

    broken = observability / "rules" / "pytest-broken.yml"
    broken.write_text(
        "groups:\n  - name: pytest-broken\n    rules:\n"
        "      - record: pytest:broken\n        expr: sum(up) ==\n"
    )
    try:
        wait_for(lambda: bool(rejected()), 15, "the rejected reload to be reported")
        assert "pytest-broken.yml" in " ".join(rejected() or []), rejected()
        events = (env.state_dir / layout.EVENTS).read_text()
        assert '"event": "prometheus-config-rejected"' in events
    finally:
        broken.unlink()
    wait_for(lambda: rejected() is None, 15, "the fixed config to clear the rejection")


@pytest.mark.slow
def test_a_rule_file_removed_from_the_repo_is_unloaded(env: LocalEnvironment, observability: Path) -> None:
    def rule_groups() -> set[str]:
        response = httpx.get(f"{env.prometheus_url}/api/v1/rules")
        return {group["name"] for group in response.json()["data"]["groups"]}

    removed = observability / "rules" / "pytest-removed.yml"
    removed.write_text(
        "groups:\n  - name: pytest-removed\n    rules:\n      - record: pytest:gone:sum\n"
        "        expr: sum(up)\n"
    )
    wait_for(lambda: "pytest-removed" in rule_groups(), 15, "Prometheus to load the new rule file")
    removed.unlink()
    wait_for(lambda: "pytest-removed" not in rule_groups(), 15, "Prometheus to drop the removed rule file")


@pytest.mark.slow
def test_save_state_writes_the_cluster_state_and_no_secret(env: LocalEnvironment, tmp_path: Path) -> None:
    assert env.prometheus_url is not None
    prometheus = metrics.PrometheusSource(env.prometheus_url, env.prometheus_selector)
    assert metrics.wait_until_scraping(prometheus, len(env.replica_urls()))[0]  # as the deploy job does
    env.save_state(tmp_path)
    for name in (
        "status.json",
        "manifests.yaml",
        "events.jsonl",
        "reconciler-history.jsonl",
        "processes.json",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    status = json.loads((tmp_path / "status.json").read_text())
    assert (status["target"], status["sync"], status["health"]) == ("local", "Synced", "Healthy")
    assert status["endpoint"] == env.endpoint
    assert {r["url"] for r in status["replicas"] if r["ready"]} == set(env.replica_urls())
    assert {t["health"] for t in status["prometheus"]["targets"]} == {"up"}
    targets = json.loads((tmp_path / "prometheus-targets.json").read_text())
    assert targets["status"] == "success"
    roles = [p["role"] for p in json.loads((tmp_path / "processes.json").read_text())]
    assert roles.count("reconciler") == 1 and roles.count("prometheus") == 1
    assert roles.count("replica") == git_replicas()
    assert "kind: Deployment" in (tmp_path / "manifests.yaml").read_text()
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or SECRET_VALUE not in path.read_text(), path.name


@pytest.mark.slow
def test_down_drains_the_replicas_before_anything_is_killed(
    small_target: LocalTarget, context: RunContext
) -> None:
    """The reconciler's SIGTERM drains each replica (its log says so); SIGKILL is only for leftovers."""
    env = small_target.up("drained", release_from_build(context), context)
    names = [replica["name"] for replica in live_replicas(env)]
    env.down()
    for name in names:
        log = (env.state_dir / layout.REPLICA_LOGS / f"{name}.log").read_text()
        assert "draining" in log, f"{name} was stopped without draining:\n{log[-500:]}"


@pytest.mark.slow
@pytest.mark.parametrize("drift_name", ["replica-count", "replica-killed", "config-drift"])
def test_drift_is_detected_and_healed_back_to_git(env: LocalEnvironment, drift_name: str) -> None:
    wait_for(lambda: env.status().converged, HEAL_TIMEOUT, "Synced and Healthy before the drift")
    events_before = len(read_events(env))
    drift = next(d for d in env.drifts() if d.name == drift_name)
    drift.cause()
    wait_for(lambda: env.status().sync == "OutOfSync", DETECT_TIMEOUT, f"{drift_name} to be detected")
    wait_for(lambda: env.status().converged, HEAL_TIMEOUT, f"{drift_name} to be healed")
    after = live_replicas(env)
    assert len(after) == git_replicas()
    assert all(r["git_config"] and r["ready"] and r["started_by"] == "reconciler" for r in after)
    discovered = json.loads((env.state_dir / layout.PROMETHEUS / "targets" / "ml-inference.json").read_text())
    assert {group["labels"]["pod"] for group in discovered} == {r["name"] for r in after}
    actions = {e["event"] for e in read_events(env)[events_before:]} & {"replica-start", "replica-stop"}
    assert actions, "the reconciler healed without starting or stopping a replica"
    assert httpx.post(f"{env.endpoint}/predict", json=PREDICT_BODY).status_code == 200


@pytest.mark.slow
def test_down_stops_every_process(env: LocalEnvironment) -> None:
    processes = environment_processes(env)
    assert len(processes) >= git_replicas() + 2  # replicas, the reconciler and Prometheus
    env.down()
    assert_all_gone(processes)
    assert env.status().health == "Missing"


@pytest.mark.slow
@pytest.mark.parametrize("drift_name", ["replica-count", "replica-killed", "config-drift"])
def test_with_healing_off_drift_is_reported_and_left_alone(
    small_target: LocalTarget, context: RunContext, monkeypatch: pytest.MonkeyPatch, drift_name: str
) -> None:
    monkeypatch.setenv("PIPELINE_RECONCILER_HEAL", "0")
    env = small_target.up(f"no-heal-{drift_name}", release_from_build(context), context)
    processes = environment_processes(env)
    next(d for d in env.drifts() if d.name == drift_name).cause()
    wait_for(lambda: env.status().sync == "OutOfSync", DETECT_TIMEOUT, f"{drift_name} to be detected")
    time.sleep(3)  # three observations or more: none of them may heal
    assert env.status().sync == "OutOfSync"
    replicas = live_replicas(env)
    if drift_name == "replica-count":
        assert len(replicas) == git_replicas() + 1
    elif drift_name == "replica-killed":
        assert len(replicas) == git_replicas() - 1
        assert env.status().health == "Degraded"
    else:
        assert [r["git_config"] for r in replicas].count(False) == 1
    processes += environment_processes(env)  # including the one started by hand
    assert small_target.down_all() == [f"no-heal-{drift_name}"]
    assert_all_gone(processes)


@pytest.mark.slow
def test_changing_git_changes_what_runs(
    small_target: LocalTarget, context: RunContext, tmp_path: Path
) -> None:
    gitops = tmp_path / "gitops"
    shutil.copytree(OVERLAY.parents[1], gitops)
    target = LocalTarget(
        state_root=small_target.state_root,
        overlay=gitops / "overlays" / "local",
        prometheus_config_dir=small_target.prometheus_config_dir,
    )
    env = target.up("git-change", release_from_build(context), context)
    try:
        edit(gitops / "overlays" / "local" / "replicas.yaml", "replicas: 3", "replicas: 2")
        edit(gitops / "base" / "ml-inference-deployment.yaml", 'value: "1000"', 'value: "500"')

        def runs_new_git() -> bool:
            replicas = live_replicas(env)
            return (
                env.status().converged
                and len(replicas) == 2
                and all(
                    psutil.Process(r["pid"]).environ()["ML_INFERENCE_MAX_BATCH"] == "500" for r in replicas
                )
            )

        wait_for(
            runs_new_git, HEAL_TIMEOUT, "2 replicas with ML_INFERENCE_MAX_BATCH=500 from the changed Git"
        )

        # A broken commit: reported as Unknown, and what runs is left alone.
        edit(
            gitops / "overlays" / "local" / "kustomization.yaml",
            "  - path: replicas.yaml",
            "  - path: gone.yaml",
        )
        wait_for(lambda: env.status().sync == "Unknown", DETECT_TIMEOUT, "the broken overlay to be reported")
        assert "gone.yaml" in " ".join(env.reconciler_status()["reasons"])
        assert env.status().health == "Healthy"
        assert len(live_replicas(env)) == 2
    finally:
        env.down()


@pytest.mark.slow
def test_up_replaces_a_stale_environment_of_the_same_name(
    small_target: LocalTarget, context: RunContext
) -> None:
    first = small_target.up("stale", release_from_build(context), context)
    stale = environment_processes(first)
    second = small_target.up("stale", release_from_build(context), context)
    try:
        assert_all_gone(stale)
        assert second.status().converged
    finally:
        second.down()


@pytest.mark.slow
def test_a_prometheus_that_never_gets_ready_is_named_with_its_own_error(
    context: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_program("prometheus")
    broken = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_CONFIG_DIR, broken)
    (broken / layout.PROMETHEUS_CONFIG).write_text("scrape_configs: [{job_name: x, scrape_interval: soon}]\n")
    monkeypatch.setattr(target, "UP_TIMEOUT_SECONDS", 15.0)
    local = LocalTarget(state_root=tmp_path / "state", prometheus_config_dir=broken)
    # It exits on the config it rejects: up() says so as soon as that repeats, with the cause.
    with pytest.raises(LocalTargetError, match=r"Prometheus exits before it is ready .*soon") as refused:
        local.up("no-prometheus", release_from_build(context), context)
    assert "(Synced, Healthy" not in str(refused.value)


@pytest.mark.slow
def test_a_prometheus_that_exits_on_a_broken_rule_fails_up_at_once_naming_the_rule(
    context: RunContext, tmp_path: Path
) -> None:
    """Prometheus exits at once on a rule that does not parse: up() need not wait out its timeout,
    and the line that names the rule is the one to show, not Prometheus' closing summary."""
    require_program("prometheus")
    broken = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_CONFIG_DIR, broken)
    rules = next((broken / "rules").glob("*.yml"))
    rules.write_text(rules.read_text().replace("expr: ", "expr: == ", 1))
    local = LocalTarget(state_root=tmp_path / "state", prometheus_config_dir=broken)
    started = time.monotonic()
    with pytest.raises(LocalTargetError, match=r"Prometheus exits before it is ready .*parse error"):
        local.up("broken-rule", release_from_build(context), context)
    assert time.monotonic() - started < target.UP_TIMEOUT_SECONDS / 2


@pytest.mark.slow
def test_a_folder_left_by_an_interrupted_up_does_not_block_the_name(
    small_target: LocalTarget, context: RunContext
) -> None:
    """Ctrl-C while up() fetched Prometheus left the environment's folder without its state file."""
    leftover = small_target.state_root / "interrupted"
    leftover.mkdir(parents=True)
    (leftover / "reconciler.log").write_text("")
    environment = small_target.up("interrupted", release_from_build(context), context)
    try:
        assert environment.status().converged
    finally:
        environment.down()


#: Brings up an environment from a process of its own, as a job of another run would, and stays.
HOLDER = """\
import sys, time
from pathlib import Path
from pipeline.context import RunContext
from pipeline.jobs._environment import release_from_build
from pipeline.targets.local.target import LocalTarget
artifacts, state_root, no_prometheus = map(Path, sys.argv[1:])
context = RunContext("local", "full", artifacts, "other-run", dry_run=False, keep=False)
target = LocalTarget(state_root=state_root, prometheus_config_dir=no_prometheus)
target.up("in-use", release_from_build(context), context)
print("up", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_an_environment_a_running_job_holds_is_neither_replaced_nor_stopped(
    small_target: LocalTarget, context: RunContext, tmp_path: Path
) -> None:
    """Another run's job brought it up and still runs: only once that job has ended is it stale."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(context.artifacts_dir), str(small_target.state_root),
         str(tmp_path / "no-prometheus")],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert "up\n" in iter(holder.stdout.readline, ""), "the holder never brought its environment up"
        with pytest.raises(LocalTargetError, match=f"in use by a job that still runs \\(pid {holder.pid}\\)"):
            small_target.up("in-use", release_from_build(context), context)
        assert small_target.down_all() == []
        status = json.loads((small_target.state_root / "in-use" / layout.STATUS).read_text())
        assert (status["sync"], status["health"]) == ("Synced", "Healthy")
    finally:
        holder.kill()
        holder.wait()
        stopped = small_target.down_all()  # now stale: its job has ended
    assert stopped == ["in-use"]


def test_up_without_a_model_says_to_run_the_build(small_target: LocalTarget, tmp_path: Path) -> None:
    context = RunContext("local", "full", tmp_path / "artifacts", "pytest", dry_run=False, keep=False)
    with pytest.raises(LocalTargetError, match="run `nox -s build` first"):
        small_target.up("no-model", release_from_build(context), context)


@pytest.mark.slow
def test_up_fails_fast_with_the_replicas_own_error_when_they_crash(
    small_target: LocalTarget, context: RunContext, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    shutil.copytree(context.artifacts_dir / "build-output", artifacts / "build-output")
    (artifacts / "build-output" / "model" / "model-card.json").unlink()
    broken = RunContext("local", "full", artifacts, "pytest", dry_run=False, keep=False)
    started = time.monotonic()
    with pytest.raises(LocalTargetError, match=r"exit before they are ready .*model-card\.json is missing"):
        small_target.up("crash-loop", release_from_build(broken), broken)
    assert time.monotonic() - started < 60  # well before up()'s own bound
    state = json.loads((small_target.state_root / "crash-loop" / layout.STATE).read_text())
    assert not psutil.pid_exists(state["reconciler_pid"])


@pytest.mark.slow
def test_a_port_taken_between_choice_and_bind_is_replaced_without_counting_a_crash(
    small_target: LocalTarget, context: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another program listens on the port the reconciler is about to give, more times in a row
    # than a crash loop needs: the replicas fail to bind, yet the environment must come up.
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        taken = other_program.getsockname()[1]
        monkeypatch.setenv(TAKEN_PORT_VARIABLE, str(taken))
        monkeypatch.setattr(target, "RECONCILER_MODULE", "tests.targets.local.reconciler_with_taken_ports")
        env = small_target.up("port-taken", release_from_build(context), context)
        try:
            assert env.status().converged
            status = env.reconciler_status()
            assert status["crash_loop"] is None
            assert all(r["port"] != taken for r in live_replicas(env))
            events = read_events(env)
            taken_exits = [e for e in events if e["event"] == "replica-port-taken"]
            assert len(taken_exits) == TAKEN_CHOICES and {e["port"] for e in taken_exits} == {taken}
            assert not [e for e in events if e["event"] == "replica-exited"]
        finally:
            env.down()


def test_saved_replica_logs_are_their_scrubbed_tails(tmp_path: Path) -> None:
    state_dir = tmp_path / "env"
    (state_dir / layout.REPLICA_LOGS).mkdir(parents=True)
    unused_pid = max(psutil.pids()) + 100_000
    (state_dir / layout.STATE).write_text(
        json.dumps(
            {
                "name": "logs",
                "endpoint": "http://127.0.0.1:9",
                "prometheus": None,
                "reconciler_pid": unused_pid,
                "environment_id": "logs-test",
            }
        )
    )
    token = "ghp_" + "a1B2c3D4" * 5
    lines = [f"request {n}" for n in range(3 * REPLICA_LOG_LINES)]
    lines[-3] = f"upstream said: Authorization: token {token}"
    (state_dir / layout.REPLICA_LOGS / "ml-inference-abc.log").write_text("\n".join(lines) + "\n")

    LocalEnvironment(state_dir).save_state(tmp_path / "saved")

    saved = (tmp_path / "saved" / "replica-logs" / "ml-inference-abc.log").read_text().splitlines()
    assert len(saved) == REPLICA_LOG_LINES and saved[-1] == lines[-1]
    assert token not in "\n".join(saved) and "upstream said" in saved[-3]


def test_stopping_an_environment_whose_reconciler_died_stops_its_hand_started_replicas(
    tmp_path: Path,
) -> None:
    """A replica started by hand (the demo's replica-count drift) runs outside the reconciler's group:
    once the reconciler is gone, only its label still ties it to the environment."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state_dir = tmp_path / "deploy"
    state_dir.mkdir()
    (state_dir / layout.STATE).write_text(
        json.dumps({"reconciler_pid": dead.pid, "environment_id": "deploy-1a2b"})
    )
    by_hand = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env=os.environ | {layout.ENVIRONMENT_LABEL: "deploy-1a2b"},
        start_new_session=True,
    )
    try:
        assert target.stop_environment(state_dir) is True
        assert by_hand.wait(timeout=5) is not None
    finally:
        if by_hand.poll() is None:
            by_hand.kill()
            by_hand.wait()
