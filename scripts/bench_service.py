#!/usr/bin/env python3
"""Benchmark the inference service (a benchmark, not a test): requests/s and latency, as ratios.

Usage:  nox -s bench -- service            (or: python scripts/bench_service.py [--duration S] [--out FILE])
Needs:  the service installed with [train] (to train a model), wrk on PATH, two CPU cores.

In one run, with the server pinned to one core and wrk to the other, it measures:
  - noop:        a bare ASGI app answering {} on the same server stack (uvicorn + uvloop + httptools):
                 the HTTP ceiling;
  - starlette:   the same empty answer through a bare Starlette route (the framework's own cost);
  - health:      GET /health through the whole service (middleware, routing, metrics, logs);
  - predict:     POST /predict;  batch-1, batch-32, batch-1000: POST /predict/batch;
  - in-process:  decode + validate + infer + encode at the same batch sizes, no HTTP: the
                 model-plus-JSON ceiling;
and reports its targets as ratios of the same run, the per-request costs it can isolate,
and whether wrk had CPU to spare (else the numbers would measure wrk, not the server).
Prints a table and writes JSON (default artifacts/bench/service.json). The machine may be
shared: absolute numbers move between runs, the ratios much less.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: import the engine

from pipeline.ports import free_port
from pipeline.samples import SAMPLE_ROW, batch_body, predict_body

CONNECTIONS = 16
BATCH_SIZES = (1, 32, 1000)
START_TIMEOUT_SECONDS = 30
TARGETS = {
    "predict_vs_noop": 0.40,
    "batch32_vs_noop": 0.35,
    "batch1000_vs_in_process": 0.50,
}
P99_TARGET_MS = 20.0
# wrk at this share of its core or more may be what limits the no-op rate.
GENERATOR_BUSY_LIMIT = 0.90
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def noop_app_main(port: int) -> None:
    """The HTTP ceiling: the service's server stack with an app that does nothing.

    `/` is bare ASGI (the ceiling itself); `/starlette` answers the same through a Starlette
    route, to show what the framework alone costs before the service does any work.
    """
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    body = b"{}"
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
    }

    async def empty(request: Any) -> Response:
        return Response(body, media_type="application/json")

    framework = Starlette(routes=[Route("/starlette", empty)])

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/starlette":
            await framework(scope, receive, send)
            return
        await send(start)
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


def pinned(cpu: int):
    return lambda: os.sched_setaffinity(0, {cpu})


def wait_for(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"bench: {url} did not answer 200 within {START_TIMEOUT_SECONDS}s")


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a live process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, body: bytes | None, seconds: float, cpu: int, server_pid: int, workdir: Path) -> dict:
    """One wrk run; returns req/s, latency percentiles, errors, and both sides' CPU use."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{int(seconds)}s", "--latency"]
    if body is not None:
        script = workdir / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
        command += ["-s", str(script)]
    server_cpu = cpu_seconds(server_pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, preexec_fn=pinned(cpu), check=True
    ).stdout
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_busy = (cpu_seconds(server_pid) - server_cpu) / wall
    generator_busy = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / wall
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        "p50_ms": _latency(output, "50"),
        "p99_ms": _latency(output, "99"),
        "errors": _errors(output),
        "server_cpu": round(server_busy, 3),
        "generator_cpu": round(generator_busy, 3),
    }


def _latency(output: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    return round(float(match[1]) * _UNITS[match[2]], 3)


def _errors(output: str) -> int:
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return errors + (int(non_2xx[1]) if non_2xx else 0)


def in_process(model_dir: Path, batch: int, seconds: float) -> dict:
    """decode + validate + infer + build + encode, as the handler does, without HTTP."""
    from time import perf_counter

    import msgspec
    from ml_inference import payloads
    from ml_inference.inference import Predictor
    from ml_inference.metrics import Metrics
    from ml_inference.model import IrisModel

    predictor = Predictor(IrisModel(model_dir), Metrics())
    body = json.dumps(batch_body([SAMPLE_ROW] * batch)).encode()

    def once() -> bytes:
        started = perf_counter()
        decoded = payloads.decode(body, payloads.BatchRequest)
        instances = payloads.instance_array(decoded.instances, "$.instances", 1000)
        return msgspec.json.encode(predictor.predict_batch(instances, started))

    calls = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        once()
        calls += 1
    elapsed = time.perf_counter() - started
    return {"calls_per_second": calls / elapsed, "predictions_per_second": calls * batch / elapsed}


def stage_costs(model_dir: Path) -> dict[str, float]:
    """Microseconds per /predict stage, measured in-process (what an optimisation could save)."""
    import timeit

    import msgspec
    import numpy as np
    from ml_inference import payloads
    from ml_inference.inference import Predictor
    from ml_inference.metrics import Metrics
    from ml_inference.model import IrisModel

    model = IrisModel(model_dir)
    predictor = Predictor(model, Metrics())
    body = json.dumps(predict_body()).encode()
    instance = np.array([SAMPLE_ROW], dtype=np.float32)
    answer = predictor.predict_one(instance, time.perf_counter())

    def per_call(function) -> float:
        number = 20000
        return round(min(timeit.repeat(function, number=number, repeat=3)) / number * 1e6, 2)

    return {
        "onnxruntime_run_us": per_call(lambda: model.predict_proba(instance)),
        "decode_and_validate_us": per_call(
            lambda: payloads.feature_array(payloads.decode(body, payloads.PredictRequest).features, "$")
        ),
        "infer_and_build_answer_us": per_call(lambda: predictor.predict_one(instance, 0.0)),
        "encode_us": per_call(lambda: msgspec.json.encode(answer)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per HTTP scenario and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all scenarios (median counts)")
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench/service.json"))
    parser.add_argument("--noop-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.noop_server is not None:
        noop_app_main(args.noop_server)
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not on PATH (Debian: apt-get install wrk)")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("bench: needs two CPU cores (one for the server, one for wrk)")
    server_cpu, generator_cpu = cpus[0], cpus[1]

    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        workdir = Path(tmp)
        model_dir = workdir / "model"
        subprocess.run([sys.executable, "-m", "ml_inference", "train", "--out", str(model_dir)], check=True)
        http = run_http_scenarios(args.duration, args.rounds, model_dir, workdir, server_cpu, generator_cpu)
        os.sched_setaffinity(0, {server_cpu})
        local = {batch: in_process(model_dir, batch, min(args.duration, 3.0)) for batch in BATCH_SIZES}
        costs = stage_costs(model_dir)

    result = summarize(http, local, costs, args.duration, args.rounds, (server_cpu, generator_cpu))
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


def run_http_scenarios(
    duration: int, rounds: int, model_dir: Path, workdir: Path, server_cpu: int, generator_cpu: int
) -> dict:
    """Both servers up at once; every scenario runs once per round, and the median round counts.

    Interleaving the rounds spreads a burst of someone else's work on a shared machine over
    all scenarios instead of letting it land on one.
    """
    noop_port, port = free_port(), free_port()
    log = (workdir / "service.log").open("w")
    servers = [
        subprocess.Popen(
            [sys.executable, __file__, "--noop-server", str(noop_port)], preexec_fn=pinned(server_cpu)
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ml_inference",
                "serve",
                "--port",
                str(port),
                "--model-dir",
                str(model_dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=pinned(server_cpu),
        ),
    ]
    noop_url, base = f"http://127.0.0.1:{noop_port}", f"http://127.0.0.1:{port}"
    scenarios: list[tuple[str, str, bytes | None, int]] = [
        ("noop", f"{noop_url}/", None, servers[0].pid),
        ("starlette", f"{noop_url}/starlette", None, servers[0].pid),
        ("health", f"{base}/health", None, servers[1].pid),
        ("predict", f"{base}/predict", json.dumps(predict_body()).encode(), servers[1].pid),
    ] + [
        (
            f"batch{n}",
            f"{base}/predict/batch",
            json.dumps(batch_body([SAMPLE_ROW] * n)).encode(),
            servers[1].pid,
        )
        for n in BATCH_SIZES
    ]
    runs: dict[str, list[dict]] = {name: [] for name, *_ in scenarios}
    try:
        wait_for(f"{noop_url}/")
        wait_for(f"{base}/ready")
        for _, url, body, pid in scenarios:  # warm-up: imports, caches, connection pools
            run_wrk(url, body, 1, generator_cpu, pid, workdir)
        for round_number in range(1, rounds + 1):
            for name, url, body, pid in scenarios:
                print(f"bench: round {round_number}/{rounds} {name}", flush=True)
                runs[name].append(run_wrk(url, body, duration, generator_cpu, pid, workdir))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        log.close()
    return {name: _median_run(results) for name, results in runs.items()}


def _median_run(results: list[dict]) -> dict:
    """The run with the median requests/s (its latencies and CPU figures come with it)."""
    ordered = sorted(results, key=lambda run: run["requests_per_second"])
    median = dict(ordered[len(ordered) // 2])
    median["rounds_requests_per_second"] = [round(run["requests_per_second"]) for run in results]
    median["errors"] = sum(run["errors"] for run in results)
    return median


def summarize(
    http: dict, local: dict, costs: dict, duration: int, rounds: int, cpus: tuple[int, int]
) -> dict:
    noop_rps = http["noop"]["requests_per_second"]
    for batch in BATCH_SIZES:
        http[f"batch{batch}"]["predictions_per_second"] = http[f"batch{batch}"]["requests_per_second"] * batch
    ratios = {
        "predict_vs_noop": http["predict"]["requests_per_second"] / noop_rps,
        "batch32_vs_noop": http["batch32"]["requests_per_second"] / noop_rps,
        "batch1000_vs_in_process": http["batch1000"]["predictions_per_second"]
        / local[1000]["predictions_per_second"],
    }
    for row in http.values():
        # Requests per second of server CPU: steadier than req/s when others share the core.
        row["requests_per_cpu_second"] = row["requests_per_second"] / max(row["server_cpu"], 1e-9)
    noop_per_cpu = http["noop"]["requests_per_cpu_second"]
    per_cpu = {
        "predict_vs_noop": http["predict"]["requests_per_cpu_second"] / noop_per_cpu,
        "batch32_vs_noop": http["batch32"]["requests_per_cpu_second"] / noop_per_cpu,
    }
    checks = {
        name: {
            "value": round(value, 3),
            "per_cpu_second": round(per_cpu[name], 3) if name in per_cpu else None,
            "target": TARGETS[name],
            "met": value >= TARGETS[name],
        }
        for name, value in ratios.items()
    }
    p99 = http["predict"]["p99_ms"]
    checks["predict_p99_ms"] = {
        "value": p99,
        "per_cpu_second": None,
        "target": P99_TARGET_MS,
        "met": p99 < P99_TARGET_MS,
        "noop_p99_ms": http["noop"]["p99_ms"],
    }
    generator = http["noop"]["generator_cpu"]
    return {
        "connections": CONNECTIONS,
        "duration_seconds": duration,
        "rounds": rounds,
        "cpus": {"server": cpus[0], "generator": cpus[1]},
        "http": http,
        "in_process": {str(batch): value for batch, value in local.items()},
        "stage_costs_us": costs,
        "targets": checks,
        "generator_not_bottleneck": {
            "generator_cpu_at_noop": generator,
            "limit": GENERATOR_BUSY_LIMIT,
            "ok": generator < GENERATOR_BUSY_LIMIT,
        },
    }


def print_table(result: dict) -> None:
    header = ("scenario", "req/s", "pred/s", "p50 ms", "p99 ms", "errors", "srv cpu", "wrk cpu", "µs cpu/req")
    print("\n" + "".join(f"{title:>11}" for title in header))
    for name, row in result["http"].items():
        predictions = row.get(
            "predictions_per_second", row["requests_per_second"] if name == "predict" else None
        )
        cells = (
            name,
            f"{row['requests_per_second']:.0f}",
            "-" if predictions is None else f"{predictions:.0f}",
            f"{row['p50_ms']:.2f}",
            f"{row['p99_ms']:.2f}",
            row["errors"],
            f"{row['server_cpu']:.2f}",
            f"{row['generator_cpu']:.2f}",
            f"{1e6 / row['requests_per_cpu_second']:.1f}",
        )
        print("".join(f"{cell:>11}" for cell in cells))
    for batch, row in result["in_process"].items():
        print(
            f"{'in-proc ' + batch:>10}{row['calls_per_second']:>10.0f}{row['predictions_per_second']:>10.0f}"
        )
    print("\nstage costs (µs): " + ", ".join(f"{k} {v}" for k, v in result["stage_costs_us"].items()))
    print(f"\n{'target':<26}{'value':>8}{'per-cpu':>9}{'target':>8}  met")
    for name, check in result["targets"].items():
        per_cpu = "-" if check["per_cpu_second"] is None else check["per_cpu_second"]
        met = "yes" if check["met"] else "NO"
        print(f"{name:<26}{check['value']:>8}{per_cpu:>9}{check['target']:>8}  {met}")
    print(f"(the no-op's own p99 in this run: {result['targets']['predict_p99_ms']['noop_p99_ms']} ms)")
    generator = result["generator_not_bottleneck"]
    verdict = "not the bottleneck" if generator["ok"] else "MAY BE THE BOTTLENECK"
    print(f"\nwrk used {generator['generator_cpu_at_noop']:.0%} of its core at the no-op: {verdict}")


if __name__ == "__main__":
    sys.exit(main())
