"""Locust load against the single endpoint: mostly /predict, with a share of /predict/batch.

FastHttpUser because one Locust process with the requests-based HttpUser saturates at about a fifth
of what the service takes here. Each task sends exactly one request, so with a stop timeout the
requests Locust counts are the requests the service counted (metrics verification relies on it).
Run by `pipeline.checks.load`; extra options: --user-rps (pacing per user, 0 = as fast as it can)
and --max-requests (the run stops when reached, whatever the run time).
"""

from __future__ import annotations

import random

import gevent
from locust import FastHttpUser, constant, constant_throughput, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

BATCH_SIZE = 10
#: Per-feature ranges of the iris data set (sepal length/width, petal length/width, cm).
FEATURE_RANGES = ((4.3, 7.9), (2.0, 4.4), (1.0, 6.9), (0.1, 2.5))
PREDICT_ROUTE = "/predict"
BATCH_ROUTE = "/predict/batch"


@events.init_command_line_parser.add_listener
def _add_options(parser: LocustArgumentParser) -> None:
    parser.add_argument(
        "--user-rps", type=float, default=10.0, help="requests per second per user; 0: no wait"
    )
    parser.add_argument("--max-requests", type=int, default=100_000, help="stop once this many were sent")


@events.init.add_listener
def _stop_at_max_requests(environment: Environment, **_kwargs: object) -> None:
    # Locust parses its command line (these options too) before it fires `init`.
    assert environment.parsed_options is not None
    limit = environment.parsed_options.max_requests
    sent = 0

    def count(**_request: object) -> None:
        nonlocal sent
        sent += 1
        if sent == limit and environment.runner is not None:
            # From a greenlet of its own: quitting stops every user, the one calling here too.
            gevent.spawn(environment.runner.quit)

    events.request.add_listener(count)


def _features() -> list[float]:
    return [round(random.uniform(low, high), 1) for low, high in FEATURE_RANGES]


class InferenceUser(FastHttpUser):
    """A client of the service: nine single predictions for every batch of ten."""

    def wait_time(self) -> float:
        rps = self.environment.parsed_options.user_rps
        return (constant_throughput(rps) if rps > 0 else constant(0))(self)

    @task(9)
    def predict(self) -> None:
        with self.client.post(PREDICT_ROUTE, json={"features": _features()}, catch_response=True) as response:
            if response.status_code == 200 and "prediction" not in (response.json() or {}):
                response.failure("200 without a prediction")

    @task(1)
    def predict_batch(self) -> None:
        body = {"instances": [_features() for _ in range(BATCH_SIZE)]}
        with self.client.post(BATCH_ROUTE, json=body, catch_response=True) as response:
            if response.status_code == 200 and (response.json() or {}).get("count") != BATCH_SIZE:
                response.failure(f"batch answer does not hold {BATCH_SIZE} predictions")
