"""What the test and demo jobs check against a deployed Environment, whatever the target.

- `api`: the API suite (pytest, junit XML) against the single endpoint.
- `load`: the Locust load (`locustfile.py`) and its pass/fail thresholds (`load-thresholds.toml`).
- `metrics`: Prometheus metrics verification, or direct scrapes of each replica without Prometheus.
- `drift`: the demo's drift timeline: cause each drift, time its detection and healing.
- `steady_load`: the light background load the demo keeps up while it drifts.
"""

from collections.abc import Mapping


def tally(states: Mapping[str, bool], word: str) -> str:
    """A check's detail from a yes/no per replica: "3 of 3 up", or which are not, by name."""
    failing = [name for name, state in states.items() if not state]
    count = f"{len(states) - len(failing)} of {len(states)} {word}"
    return f"{count}; not {word}: {', '.join(failing)}" if failing else count
