"""What the process knows about itself: the loaded model, readiness, draining, requests in flight.

One instance lives on `app.state.service`; the lifespan fills it, the middleware counts requests,
and the server's SIGTERM handler flips `draining`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml_inference.inference import Predictor


@dataclass
class ServiceState:
    predictor: Predictor | None = None
    load_error: str | None = None
    draining: bool = False
    in_flight: int = 0

    @property
    def ready(self) -> bool:
        return self.predictor is not None and not self.draining

    @property
    def not_ready_reason(self) -> str:
        if self.draining:
            return "draining: the process is shutting down"
        if self.load_error is not None:
            # The error names files and digests: that is for the log, not for any HTTP client.
            return "model failed to load; the service's log says why"
        return "model is loading"
