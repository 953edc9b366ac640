"""Where an environment's files live under .pipeline/local/<env>/, and how its processes are labelled.

Shared by Target.up/down (stdlib only: `invoke down` has nothing else installed), the reconciler
and the Environment, so each name is spelled once.
"""

from __future__ import annotations

#: Written by Target.up: name, ids, ports, endpoint, Prometheus, reconciler pid.
STATE = "state.json"
#: Kept current by the reconciler: its latest observation.
STATUS = "status.json"
EVENTS = "events.jsonl"
HISTORY = "history.jsonl"
MANIFESTS = "manifests.yaml"
RECONCILER_LOG = "reconciler.log"
REPLICA_LOGS = "replicas"
PROMETHEUS = "prometheus"
PROMETHEUS_CONFIG = "local.yml"
PROMETHEUS_DATA = "prometheus-data"
PROMETHEUS_LOG = "prometheus.log"

ENVIRONMENT_LABEL = "PIPELINE_LOCAL_ENVIRONMENT"
REPLICA_LABEL = "PIPELINE_LOCAL_REPLICA"
#: Variables a replica inherits from the reconciler; everything else comes from Git, like a container.
PASSTHROUGH_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
