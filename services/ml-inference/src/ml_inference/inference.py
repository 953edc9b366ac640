"""Run the model on checked instances and shape the answers, recording the model metrics.

Both the REST handlers and the OIP v2 handler go through `Predictor.probabilities`, so every
model call is timed and counted once, the same way. Answers are plain dicts encoded by msgspec:
building a response object per instance is what made big batches slow.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

import numpy as np

from ml_inference.metrics import Metrics
from ml_inference.model import IrisModel


class Predictor:
    def __init__(self, model: IrisModel, metrics: Metrics) -> None:
        self.model = model
        self.class_names = model.class_names
        self.model_ref = {"name": model.name, "version": model.version}
        self._metrics = metrics
        self._class_counters = [metrics.predictions.labels(name) for name in self.class_names]

    def probabilities(self, instances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities rounded to 6 places, predicted class index) for each row of `instances`."""
        started = perf_counter()
        raw = self.model.predict_proba(instances)
        self._metrics.inference_duration.observe(perf_counter() - started)
        self._metrics.batch_size.observe(len(instances))
        predicted = raw.argmax(axis=1)
        for counter, count in zip(
            self._class_counters, np.bincount(predicted, minlength=len(raw[0])), strict=True
        ):
            if count:
                counter.inc(int(count))
        return np.round(raw.astype(np.float64), 6), predicted

    def predict_one(self, instance: np.ndarray, started: float) -> dict[str, Any]:
        probabilities, predicted = self.probabilities(instance)
        return {
            "prediction": self.class_names[predicted[0]],
            "probabilities": dict(zip(self.class_names, probabilities[0].tolist(), strict=True)),
            "model": self.model_ref,
            "processing_time_ms": _elapsed_ms(started),
        }

    def predict_batch(self, instances: np.ndarray, started: float) -> dict[str, Any]:
        probabilities, predicted = self.probabilities(instances)
        names = self.class_names
        predictions = [
            {"prediction": names[index], "probabilities": dict(zip(names, row, strict=True))}
            for index, row in zip(predicted.tolist(), probabilities.tolist(), strict=True)
        ]
        return {
            "predictions": predictions,
            "count": len(predictions),
            "model": self.model_ref,
            "processing_time_ms": _elapsed_ms(started),
        }


def _elapsed_ms(started: float) -> float:
    return round((perf_counter() - started) * 1000, 3)
