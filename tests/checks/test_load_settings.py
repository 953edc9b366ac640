"""How the load is tuned and summarised, without running one (the real loads are in test_checks.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.checks.load import LoadSettings, Thresholds, percentile


def test_environment_variables_tune_the_load() -> None:
    settings = LoadSettings.from_env({"PIPELINE_LOAD_USERS": "50", "PIPELINE_LOAD_DURATION": "60"})
    assert (settings.users, settings.duration_seconds) == (50, 60)
    assert settings.spawn_rate == LoadSettings().spawn_rate


@pytest.mark.parametrize(
    "bad", [{"users": 0}, {"duration_seconds": 0}, {"user_rps": -1}, {"max_requests": 0}]
)
def test_a_load_that_cannot_run_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        LoadSettings(**bad)


def test_percentiles_are_nearest_rank_over_locusts_histogram() -> None:
    histogram = Counter({3.0: 98, 40.0: 1, 120.0: 1})
    assert percentile(histogram, 0.50) == 3.0
    assert percentile(histogram, 0.99) == 40.0
    assert percentile(histogram, 1.0) == 120.0
    assert percentile(Counter(), 0.99) is None


def test_every_broken_threshold_is_named() -> None:
    thresholds = Thresholds(max_failure_ratio=0.0, min_requests=100, max_p99_ms=200)
    summary = {"failure_ratio": 0.01, "requests": 10, "p99_ms": 450.0}
    assert [v.split()[0] for v in thresholds.violations(summary)] == ["failure", "only", "p99"]
    assert thresholds.violations({"failure_ratio": 0.0, "requests": 100, "p99_ms": 200.0}) == []


def test_a_load_no_request_of_which_was_answered_breaks_the_p99_bound_in_words() -> None:
    thresholds = Thresholds(max_failure_ratio=1.0, min_requests=0, max_p99_ms=200)
    assert thresholds.violations({"failure_ratio": 1.0, "requests": 50, "p99_ms": None}) == [
        "no p99: no request was answered"
    ]
