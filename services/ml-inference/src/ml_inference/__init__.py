"""ml_inference: the iris classifier behind a REST and Open Inference Protocol v2 API."""

__version__ = "0.1.0"
