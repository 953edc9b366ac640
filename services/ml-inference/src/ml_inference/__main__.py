"""Command line: `python -m ml_inference train --out DIR` and `python -m ml_inference serve`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml_inference", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train the iris model and export it to ONNX")
    train_parser.add_argument(
        "--out", type=Path, required=True, help="folder for model.onnx and model-card.json"
    )
    serve_parser = commands.add_parser("serve", help="serve the model over HTTP (settings: ML_INFERENCE_*)")
    serve_parser.add_argument("--host", help="address to listen on (ML_INFERENCE_HOST)")
    serve_parser.add_argument("--port", type=int, help="port to listen on, 0 for any (ML_INFERENCE_PORT)")
    serve_parser.add_argument(
        "--model-dir", type=Path, help="folder with model.onnx (ML_INFERENCE_MODEL_DIR)"
    )
    args = parser.parse_args(argv)

    if args.command == "train":
        from ml_inference.train import train

        card = train(args.out)
        print(f"trained {card.name} {card.version} (test accuracy {card.test_accuracy:.3f}) into {args.out}")
        return 0

    from ml_inference.logs import configure_logging
    from ml_inference.model import ModelLoadError, check_model_dir
    from ml_inference.server import EXIT_PORT_IN_USE, PortInUseError, serve
    from ml_inference.settings import Settings

    overrides = {
        key: value for key in ("host", "port", "model_dir") if (value := getattr(args, key)) is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        problems = "; ".join(
            f"ML_INFERENCE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        print(f"error: invalid settings: {problems}", file=sys.stderr)
        return 2
    try:
        check_model_dir(settings.model_dir)
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        serve(settings)
    except PortInUseError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_PORT_IN_USE
    return 0


if __name__ == "__main__":
    sys.exit(main())
