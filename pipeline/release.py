"""What a job hands a target (a `Release`) and what it gets back (an `Environment`).

Jobs talk to a target only through these words, so the test suite, the load and the drift
timeline are shared by every target. Status values mirror Argo CD's: sync is "Synced" or
"OutOfSync"; health is "Healthy", "Progressing", "Degraded" or "Missing".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Release:
    """What to run, as the build made it: the trained model and the service's image."""

    model_dir: Path
    #: The image reference the build tagged ("" when it built none). A target runs the image by this
    #: tag: a registry digest does not survive `docker save` and load onto a node.
    image_tag: str = ""
    #: Why there is no image, when there is none (the build's image_status).
    image_status: str = ""


@dataclass(frozen=True)
class ControllerStatus:
    sync: str
    health: str

    @property
    def converged(self) -> bool:
        return self.sync == "Synced" and self.health == "Healthy"

    def __str__(self) -> str:
        return f"{self.sync}, {self.health}"


@dataclass(frozen=True)
class Drift:
    """A change made by hand, outside Git, that the GitOps controller must undo."""

    name: str
    description: str
    cause: Callable[[], None]


@dataclass(frozen=True)
class Observation:
    """The live state the demo records around a drift, as the environment itself reports it."""

    #: Replicas running now (not terminating), ready or not.
    replicas: int
    ready_replicas: int
    #: The setting the config drift changes, and the distinct values the running replicas have.
    config: dict[str, list[str]] = field(default_factory=dict)


class Environment(Protocol):
    """One deployed copy of the service (a namespace on Kubernetes, a process group locally)."""

    name: str
    #: Base URL of the single load-balanced endpoint, e.g. "http://127.0.0.1:41234".
    endpoint: str
    #: Base URL of Prometheus' HTTP API for this environment, or None when none runs.
    prometheus_url: str | None
    #: Labels selecting this environment's series in that Prometheus: {} when the Prometheus is the
    #: environment's own (local); {"namespace": ...} where environments share one (Kubernetes).
    prometheus_selector: dict[str, str]

    def replica_urls(self) -> list[str]:
        """Base URLs of each ready replica, for probes and metrics (like pod IPs)."""

    def status(self) -> ControllerStatus:
        """The GitOps controller's current view of this environment."""

    def drifts(self) -> list[Drift]:
        """The demo's hand-made drifts, in the order the demo causes them."""

    def observed(self) -> Observation:
        """The live replica counts and the config drift's setting, read now (not the controller's view)."""

    def save_state(self, directory: Path) -> None:
        """Write the environment's state (never a secret) into `directory`: its controller's and
        replicas' status, events and replica (container) logs, for cluster-state, test-results
        and demo-artifacts."""

    def down(self) -> None:
        """Stop everything this environment started."""
