"""The test job's Locust load: run it headless, bounded, and judge it against thresholds from config.

Locust runs in its own process (gevent patches the whole interpreter) and writes its CSV stats,
stats history, HTML report and final JSON stats; the summary the report reads (load-summary.json
in the shape docs/artifacts.md gives) is computed from the JSON stats and the stats history.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline import settings

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
DEFAULT_THRESHOLDS = Path(__file__).with_name("load-thresholds.toml")
CSV_PREFIX = "locust"
#: Seconds Locust gives each user to finish its request at the end, so no request is cut mid-way.
STOP_TIMEOUT_SECONDS = 5
#: Beyond run time + stop timeout, how long Locust may take to start and write its reports.
STARTUP_AND_REPORT_SECONDS = 60
PROGRESS_EVERY_SECONDS = 5


@dataclass(frozen=True)
class LoadSettings:
    """How hard and how long to load; CLI args override PIPELINE_LOAD_* variables (pipeline/settings.py)."""

    users: int = settings.number("PIPELINE_LOAD_USERS", int, {})
    spawn_rate: float = settings.number("PIPELINE_LOAD_SPAWN_RATE", float, {})
    duration_seconds: int = settings.number("PIPELINE_LOAD_DURATION", int, {})
    user_rps: float = settings.number("PIPELINE_LOAD_USER_RPS", float, {})
    max_requests: int = settings.number("PIPELINE_LOAD_MAX_REQUESTS", int, {})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LoadSettings:
        return cls(
            users=settings.number("PIPELINE_LOAD_USERS", int, environ),
            spawn_rate=settings.number("PIPELINE_LOAD_SPAWN_RATE", float, environ),
            duration_seconds=settings.number("PIPELINE_LOAD_DURATION", int, environ),
            user_rps=settings.number("PIPELINE_LOAD_USER_RPS", float, environ),
            max_requests=settings.number("PIPELINE_LOAD_MAX_REQUESTS", int, environ),
        )

    def __post_init__(self) -> None:
        positive = ("users", "spawn_rate", "duration_seconds", "max_requests")
        values = {name: getattr(self, name) for name in positive}
        wrong = [f"{name}={value}" for name, value in values.items() if not 0 < value < math.inf]
        if wrong:
            raise ValueError(f"the load settings must be above 0 and finite: {', '.join(wrong)}")
        if not 0 <= self.user_rps < math.inf:
            raise ValueError(f"user_rps must be >= 0 and finite (0: no pacing), got {self.user_rps}")


@dataclass(frozen=True)
class Thresholds:
    max_failure_ratio: float
    min_requests: int
    max_p99_ms: float

    @classmethod
    def load(cls, path: Path = DEFAULT_THRESHOLDS) -> Thresholds:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
        try:
            return cls(
                max_failure_ratio=float(config["max_failure_ratio"]),
                min_requests=int(config["min_requests"]),
                max_p99_ms=float(config["max_p99_ms"]),
            )
        except KeyError as missing:
            raise ValueError(f"{path} lacks the threshold {missing}") from None

    def violations(self, summary: dict[str, Any]) -> list[str]:
        """Each threshold `summary` breaks, as a sentence; empty when the load passed."""
        broken = []
        if summary["failure_ratio"] > self.max_failure_ratio:
            broken.append(f"failure ratio {summary['failure_ratio']:.4f} > {self.max_failure_ratio}")
        if summary["requests"] < self.min_requests:
            broken.append(f"only {summary['requests']} requests < {self.min_requests}")
        if summary["p99_ms"] is None:
            broken.append("no p99: no request was answered")
        elif summary["p99_ms"] > self.max_p99_ms:
            broken.append(f"p99 {summary['p99_ms']} ms > {self.max_p99_ms} ms")
        return broken


def locust_command(endpoint: str, settings: LoadSettings, out_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--host", endpoint,
        "--users", str(settings.users), "--spawn-rate", str(settings.spawn_rate),
        "--run-time", f"{settings.duration_seconds}s", "--stop-timeout", str(STOP_TIMEOUT_SECONDS),
        "--user-rps", str(settings.user_rps), "--max-requests", str(settings.max_requests),
        "--csv", str(out_dir / CSV_PREFIX), "--html", str(out_dir / "report.html"),
        "--json-file", str(out_dir / CSV_PREFIX),
    ]  # fmt: skip


class LoadStopped(KeyboardInterrupt):
    """The load was stopped part-way (Ctrl-C, the runner's SIGINT); `summary` judges what ran."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__("the load was stopped part-way")
        self.summary = summary


def run_load(endpoint: str, settings: LoadSettings, thresholds: Thresholds, out_dir: Path) -> dict[str, Any]:
    """Load `endpoint`, leave Locust's files in `out_dir`, return the judged summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = locust_command(endpoint, settings, out_dir)
    deadline = settings.duration_seconds + STOP_TIMEOUT_SECONDS + STARTUP_AND_REPORT_SECONDS
    print(f"load: {settings.users} users, {settings.duration_seconds} s against {endpoint}")
    error = None
    stopped = False
    with (out_dir / "locust.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            exit_code = _wait_with_progress(process, deadline, out_dir, settings)
        except KeyboardInterrupt:
            # Locust, stopped too (or now), writes its last stats before it exits.
            stopped = True
            process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_TIMEOUT_SECONDS)
            exit_code = process.poll()
        finally:
            if process.poll() is None:  # timeout, or a Locust that would not stop: leave none behind
                process.kill()
                process.wait()
    # Locust exits 1 when a request failed: that is judged below, from its own stats.
    if stopped:
        error = "the load was stopped part-way (Ctrl-C or the pipeline's stop)"
    elif exit_code is None:
        error = f"Locust did not finish within {deadline} s; killed"
    elif exit_code not in (0, 1):
        error = f"Locust exited with {exit_code}; see load/locust.log"
    summary = summarize(out_dir, settings)
    summary["thresholds"] = asdict(thresholds)
    summary["violations"] = [*([error] if error else []), *thresholds.violations(summary)]
    summary["passed"] = not summary["violations"]
    if stopped:
        raise LoadStopped(summary)
    return summary


def _wait_with_progress(
    process: subprocess.Popen[bytes],
    deadline: float,
    out_dir: Path,
    settings: LoadSettings,
) -> int | None:
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        try:
            return process.wait(timeout=PROGRESS_EVERY_SECONDS)
        except subprocess.TimeoutExpired:
            history = read_history(out_dir)
            if history:
                last = history[-1]
                latency = (
                    "no answer yet"
                    if last["p50_ms"] is None
                    else f"p50 {last['p50_ms']:g} ms, p95 {last['p95_ms']:g} ms"
                )
                elapsed = f"{last['t']:.0f}/{settings.duration_seconds} s"
                print(f"load: {elapsed}, {last['rps']:.0f} req/s, {latency}")
    return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # Locust writes "N/A" before the first response
        return None


def read_history(out_dir: Path) -> list[dict[str, Any]]:
    """Locust's stats history as the report's series over time (t in seconds from the first row).

    The rate is the running total's growth since the row before: Locust's own Requests/s column
    averages the 10 s that end 2 s back, which draws a short load as a ramp that lags its real rate.
    """
    try:
        with (out_dir / f"{CSV_PREFIX}_stats_history.csv").open(newline="") as handle:
            rows = [
                row
                for row in csv.DictReader(handle)
                # The last line may be half written while Locust runs: it has no running total yet.
                if row.get("Name") == "Aggregated" and row.get("Total Request Count") is not None
            ]
    except OSError:
        return []
    history: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        at, total = int(row["Timestamp"]), int(row["Total Request Count"])
        rate = 0.0
        if index:
            elapsed = at - int(rows[index - 1]["Timestamp"])
            sent = total - int(rows[index - 1]["Total Request Count"])
            rate = sent / elapsed if elapsed > 0 else history[-1]["rps"]
        history.append(
            {
                "t": at - int(rows[0]["Timestamp"]),
                "users": int(row["User Count"]),
                "rps": rate,
                "p50_ms": _number(row["50%"]),
                "p95_ms": _number(row["95%"]),
            }
        )
    return history


def percentile(histogram: Counter[float], fraction: float) -> float | None:
    """Nearest-rank percentile of Locust's response-time histogram (ms -> count); None when empty."""
    rank = math.ceil(fraction * histogram.total())
    seen = 0
    for response_time in sorted(histogram):
        seen += histogram[response_time]
        if seen >= rank:
            return response_time
    return None


def summarize(out_dir: Path, settings: LoadSettings) -> dict[str, Any]:
    """The load summary docs/artifacts.md describes (zeros when Locust wrote nothing).

    From Locust's final JSON stats, written once every user finished its last request: unlike the
    CSV, which Locust rewrites once a second, it holds every request, so it matches the server's counters.
    """
    try:
        entries = json.loads((out_dir / f"{CSV_PREFIX}.json").read_text())
    except (OSError, ValueError):
        entries = []
    histogram: Counter[float] = Counter()
    for entry in entries:
        histogram.update({float(ms): count for ms, count in entry["response_times"].items()})
    requests = sum(entry["num_requests"] for entry in entries)
    failures = sum(entry["num_failures"] for entry in entries)
    elapsed = max((e["last_request_timestamp"] or 0 for e in entries), default=0) - min(
        (e["start_time"] for e in entries), default=0
    )
    return {
        "users": settings.users,
        "spawn_rate": settings.spawn_rate,
        "duration_seconds": settings.duration_seconds,
        "user_rps": settings.user_rps,
        "requests": requests,
        "failures": failures,
        "failure_ratio": failures / requests if requests else 0.0,
        "requests_per_second": round(requests / elapsed, 2) if elapsed > 0 else 0.0,
        "p50_ms": percentile(histogram, 0.50),
        "p95_ms": percentile(histogram, 0.95),
        "p99_ms": percentile(histogram, 0.99),
        "requests_by_route": {entry["name"]: entry["num_requests"] for entry in entries},
        "history": read_history(out_dir),
    }
