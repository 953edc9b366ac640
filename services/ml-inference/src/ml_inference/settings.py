"""Every setting of the service, read from ML_INFERENCE_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """One place for configuration; the CLI's flags override the environment."""

    model_config = SettingsConfigDict(env_prefix="ML_INFERENCE_", extra="ignore", frozen=True)

    #: Address to listen on (the image sets 0.0.0.0).
    host: str = "127.0.0.1"
    #: Port to listen on; 0 takes any free port and logs it in the `listening` line.
    port: int = Field(default=8080, ge=0, le=65535)
    #: Folder with model.onnx and model-card.json.
    model_dir: Path = Path("model")
    #: Instances per /predict/batch or OIP infer call; more is refused with 413.
    max_batch: int = Field(default=1000, ge=1)
    #: Request bodies above this are refused with 413 before they are read whole.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: Lowest level logged (`critical` … `debug`); access lines are `info`.
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    settle_seconds: float = Field(
        default=0.5,
        ge=0,
        description="After SIGTERM, how long the process keeps listening and answering (while /ready "
        "says 503), so that load balancers still routing to it are answered rather than refused.",
    )
    drain_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="After the settle time, how long requests being served get to finish before the "
        "process exits; it exits at most SETTLE_SECONDS + DRAIN_TIMEOUT_SECONDS after SIGTERM.",
    )
    body_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request's headers and body must arrive within this many seconds of its first "
        "byte; else it is answered 408 and its connection closes.",
    )
    keep_alive_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="An idle connection (between requests, or before the first) closes after this many "
        "seconds.",
    )
    max_connections: int = Field(
        default=256,
        ge=1,
        description="Open connections served at once; a connection opened while this many others are "
        "open gets a 503 and is closed (the health probes excepted), and the others go on being served. "
        "Each may hold up to MAX_BODY_BYTES of body while it arrives.",
    )
    #: Also listen on 127.0.0.1:SHARED_PORT with SO_REUSEPORT, so replicas share one endpoint.
    shared_port: int | None = Field(default=None, ge=1, le=65535)
