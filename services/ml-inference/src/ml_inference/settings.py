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
    #: After SIGTERM, how long in-flight requests get to finish before the process exits.
    drain_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Also listen on 127.0.0.1:SHARED_PORT with SO_REUSEPORT, so replicas share one endpoint.
    shared_port: int | None = Field(default=None, ge=1, le=65535)
