"""The model quality gate: the new model's held-out accuracy against a floor and against the previous model.

The figures are the model cards' `test_accuracy`, which training measures on the split it held out.
The thresholds are in quality-gate.toml beside this module. The verdict and its inputs go into the
build record (`quality_gate`), and a failed gate fails the build with both figures, before any image
is built.

Where the previous model comes from: the build's own folder as the last build in this artifacts
directory left it, read before this build overwrites it (build-output/model/model-card.json, and
build-record.json's `quality_gate`); when `invoke pipeline` has emptied that folder, the copies it
kept in `previous/build-output/` at the start of the run. A model that failed the gate is never a
baseline: a failed build's record carries its own baseline forward, so retrying a bad model compares
it with the last good one. Nor is one whose build stopped before the gate (Ctrl-C, an error): its
record's gate stays "pending", carrying the baseline forward the same way, and deploy refuses its
model. A GitHub build starts on a fresh runner, where only the report job fills
`previous/`, after the build: it has no previous model and only the floor applies there.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pipeline.artifacts import read_json
from pipeline.build import BuildError
from pipeline.build.training import CARD_FILE
from pipeline.record import PREVIOUS_DIR

CONFIG_FILE = Path(__file__).with_name("quality-gate.toml")
RECORD_KEY = "quality_gate"


def load_config(path: Path = CONFIG_FILE) -> dict[str, float]:
    """The gate's thresholds; a missing or broken file is an error naming it."""
    try:
        config = tomllib.loads(path.read_text())
        return {key: float(config[key]) for key in ("min_test_accuracy", "max_drop")}
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
        raise BuildError(f"cannot read the quality gate's thresholds from {path}: {error!r}") from None


def previous_model(build_dir: Path, record_file: str) -> dict[str, Any] | None:
    """The last accepted model of this artifacts directory (version, accuracy, where it was read), or None."""
    if not any((build_dir / name).is_file() for name in (record_file, f"model/{CARD_FILE}")):
        build_dir = build_dir.parent / PREVIOUS_DIR / build_dir.name  # kept by the runner
    gate = (read_json(build_dir / record_file) or {}).get(RECORD_KEY) or {}
    if gate and gate.get("verdict") != "passed":  # failed, or the build stopped before the gate
        return gate.get("previous")
    card = read_json(build_dir / "model" / CARD_FILE) or {}
    if not isinstance(card.get("test_accuracy"), (int, float)):
        return None
    return {
        "version": card.get("version"),
        "test_accuracy": card["test_accuracy"],
        "source": str(build_dir / "model" / CARD_FILE),
    }


def pending(previous: dict[str, Any] | None) -> dict[str, Any]:
    """The gate from the build's start: it carries the baseline, and accepts no model yet."""
    return {"verdict": "pending", "previous": previous}


def evaluate(
    card: dict[str, Any], previous: dict[str, Any] | None, config: dict[str, float]
) -> dict[str, Any]:
    """The gate's record: its inputs, the verdict, and a reason per failed condition."""
    accuracy = float(card["test_accuracy"])
    reasons = []
    if accuracy < config["min_test_accuracy"]:
        reasons.append(
            f"held-out accuracy {accuracy:.3f} is below the floor {config['min_test_accuracy']:.3f}"
        )
    if previous is not None and accuracy < previous["test_accuracy"] - config["max_drop"]:
        reasons.append(
            f"held-out accuracy {accuracy:.3f} is more than {config['max_drop']:.3f} below the previous "
            f"model's {previous['test_accuracy']:.3f} ({previous['version']})"
        )
    return {
        "verdict": "failed" if reasons else "passed",
        "model_version": card["version"],
        "test_accuracy": accuracy,
        "min_test_accuracy": config["min_test_accuracy"],
        "max_drop": config["max_drop"],
        "previous": previous,
        "reasons": reasons,
    }


def describe(gate: dict[str, Any]) -> str:
    previous = gate["previous"]
    against = f"previous {previous['test_accuracy']:.3f}" if previous else "no previous model"
    return f"held-out accuracy {gate['test_accuracy']:.3f}; floor {gate['min_test_accuracy']:.3f}, {against}"


def enforce(gate: dict[str, Any]) -> None:
    """Fail the build when the gate failed, naming both figures and where the thresholds live."""
    if gate["verdict"] == "failed":
        raise BuildError(f"quality gate: {'; and '.join(gate['reasons'])} (thresholds: {CONFIG_FILE})")
