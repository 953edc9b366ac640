"""Run the model on checked instances and shape the answers, recording the model metrics.

Both the REST handlers and the OIP v2 handler go through `Predictor.probabilities`, so every
model call is timed and counted once, the same way. Answers are msgspec structs made for the
model's class names at load time: building a dict (or a pydantic model) per instance is what
made big batches slow, and msgspec encodes structs faster than dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

import msgspec
import numpy as np

from ml_inference.metrics import Metrics
from ml_inference.model import IrisModel
from ml_inference.payloads import ApiError

DECIMALS = 6


class Predictor:
    def __init__(self, model: IrisModel, metrics: Metrics) -> None:
        self.model = model
        self.class_names = model.class_names
        self.model_ref = {"name": model.name, "version": model.version}
        self._class_counters = [metrics.predictions.labels(name) for name in self.class_names]
        self._inference_duration = metrics.inference_duration
        self._batch_size = metrics.batch_size
        # Field names are positional (c0, c1, ...) and renamed to the class names on the wire,
        # so any class name works, whatever characters it has.
        fields = [f"c{index}" for index in range(len(self.class_names))]
        self._probabilities = msgspec.defstruct(
            "Probabilities",
            [(field, float) for field in fields],
            rename=dict(zip(fields, self.class_names, strict=True)),
        )
        self._prediction = msgspec.defstruct(
            "Prediction", [("prediction", str), ("probabilities", self._probabilities)]
        )

    def probabilities(
        self, instances: np.ndarray, field_of_row: Callable[[int], str]
    ) -> tuple[list[list[float]], list[int]]:
        """(probabilities rounded to 6 places, predicted class index) for each row of `instances`.

        A row whose probabilities the model's float32 arithmetic cannot hold (features within
        float32 that overflow inside it) is refused: an ApiError naming `field_of_row(row)`.
        """
        started = perf_counter()
        raw = self.model.predict_proba(instances)
        self._inference_duration.observe(perf_counter() - started)
        self._batch_size.observe(len(instances))
        if not np.isfinite(raw).all():
            field = field_of_row(int(np.flatnonzero(~np.isfinite(raw).all(axis=1))[0]))
            raise ApiError(
                422, f"{field} is beyond what the model can score: send measurements in cm.", field
            )
        predicted = raw.argmax(axis=1)
        if len(raw) == 1:
            # numpy's fixed cost per call outweighs its speed on three numbers.
            self._class_counters[predicted[0]].inc()
            return [[round(p, DECIMALS) for p in raw[0].tolist()]], predicted.tolist()
        counts = np.bincount(predicted, minlength=raw.shape[1]).tolist()
        for counter, count in zip(self._class_counters, counts, strict=True):
            if count:
                counter.inc(count)
        return raw.astype(np.float64).round(DECIMALS).tolist(), predicted.tolist()

    def predict_one(self, instance: np.ndarray, started: float) -> dict[str, Any]:
        probabilities, predicted = self.probabilities(instance, lambda _: "$.features")
        return {
            "prediction": self.class_names[predicted[0]],
            "probabilities": self._probabilities(*probabilities[0]),
            "model": self.model_ref,
            "processing_time_ms": _elapsed_ms(started),
        }

    def predict_batch(self, instances: np.ndarray, started: float) -> dict[str, Any]:
        probabilities, predicted = self.probabilities(instances, lambda row: f"$.instances[{row}]")
        names, prediction, by_class = self.class_names, self._prediction, self._probabilities
        predictions = [
            prediction(names[index], by_class(*row))
            for index, row in zip(predicted, probabilities, strict=True)
        ]
        return {
            "predictions": predictions,
            "count": len(predictions),
            "model": self.model_ref,
            "processing_time_ms": _elapsed_ms(started),
        }


def _elapsed_ms(started: float) -> float:
    return round((perf_counter() - started) * 1000, 3)
