"""Unit job: run the service's test suite; JUnit XML and a count summary into unit-results/.

The exit code is pytest's, so the pipeline fails exactly when a test fails. The summary is
written even then (and even when pytest dies before writing XML, or the job is stopped part-way),
so the report always has it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from pipeline.artifacts import job_dir, write_json_atomic, write_outputs
from pipeline.jobs._main import exit_with

SERVICE_TESTS = "services/ml-inference/tests"
COUNTED = ("tests", "failures", "errors", "skipped")


def summarize(junit: Path, exit_code: int) -> dict[str, object]:
    """Counts from a JUnit XML file; zeros (and `junit_missing`) when pytest wrote none."""
    counts = dict.fromkeys(COUNTED, 0)
    duration = 0.0
    try:
        root = ElementTree.parse(junit).getroot()
    except (OSError, ElementTree.ParseError):
        return {**counts, "passed": 0, "duration_seconds": 0.0, "exit_code": exit_code, "junit_missing": True}
    for suite in root.iter("testsuite"):
        for key in COUNTED:
            counts[key] += int(suite.get(key, 0))
        duration += float(suite.get("time", 0))
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {**counts, "passed": passed, "duration_seconds": round(duration, 3), "exit_code": exit_code}


#: Two pytest-xdist workers, one per core here; the idle one steals queued tests, so a worker left
#: with the slow process tests at the end does not finish alone (docs/benchmarks.md).
WORKERS = ("--numprocesses", "2", "--dist", "worksteal")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="nox -s unit --",
        description=__doc__.splitlines()[0],
        epilog="Every other argument goes to pytest (e.g. `-k name`, `-x`).",
    )
    _, pytest_args = parser.parse_known_args(argv)
    out = job_dir("unit", fresh=True)
    junit = out / "junit.xml"
    command = [sys.executable, "-m", "pytest", SERVICE_TESTS, *WORKERS, "-ra", f"--junitxml={junit}"]
    command += pytest_args
    print("+", " ".join(command), flush=True)
    pytest = subprocess.Popen(command)
    stopped = False
    try:
        exit_code = pytest.wait()
    except KeyboardInterrupt:
        # pytest got the same SIGINT (one process group): it stops, writes its XML and exits.
        exit_code, stopped = pytest.wait(), True
    summary = summarize(junit, exit_code)
    write_json_atomic(out / "summary.json", summary)
    write_outputs("unit", {key: str(summary[key]) for key in (*COUNTED, "passed")})
    tally = f"{summary['passed']}/{summary['tests']} passed"
    if stopped:  # the XML holds only the tests that ran
        tally = f"stopped part-way: {summary['tests']} tests ran, {summary['passed']} passed"
    print(f"unit: {tally}, summary in {out / 'summary.json'}", flush=True)
    return exit_code


if __name__ == "__main__":
    exit_with("unit", main)
