"""What the test and demo jobs check against a deployed Environment, whatever the target.

- `api`: the API suite (pytest, junit XML) against the single endpoint.
- `load`: the Locust load (`locustfile.py`) and its pass/fail thresholds (`load-thresholds.toml`).
- `metrics`: Prometheus metrics verification, or direct scrapes of each replica without Prometheus.
- `drift`: the demo's drift timeline: cause each drift, time its detection and healing.
- `steady_load`: the light background load the demo keeps up while it drifts.
"""
