"""The demo's steady load against an endpoint that refuses every connection (a free port on 127.0.0.1)."""

from __future__ import annotations

from pipeline.checks.steady_load import SteadyLoad
from pipeline.ports import free_port
from tests.helpers import written_as_records_write_times


def test_each_failure_is_counted_and_kept_with_its_time_as_records_write_times() -> None:
    with SteadyLoad(f"http://127.0.0.1:{free_port()}", rate=50, max_seconds=5, max_requests=3) as load:
        load._thread.join(timeout=10)
    summary = load.summary()
    assert (summary["requests"], summary["failures"], summary["failure_ratio"]) == (3, 3, 1.0)
    assert [failure["reason"].split(":")[0] for failure in summary["first_failures"]] == ["ConnectError"] * 3
    times = [failure["at"] for failure in summary["first_failures"]]
    assert all(map(written_as_records_write_times, times)), times
