"""Iris flowers to send the service: the checks, the build's smoke test, benchmarks and tests share them.

Textbook rows of the iris data set (1, 51 and 101), one of each class: sepal length, sepal width,
petal length and petal width in cm.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

SETOSA = (5.1, 3.5, 1.4, 0.2)
VERSICOLOR = (7.0, 3.2, 4.7, 1.4)
VIRGINICA = (6.3, 3.3, 6.0, 2.5)
#: The row a check sends when any valid flower will do.
SAMPLE_ROW = SETOSA


def predict_body(row: Sequence[float] = SAMPLE_ROW) -> dict[str, list[float]]:
    """The JSON body of `POST /predict` for one row."""
    return {"features": list(row)}


def batch_body(rows: Iterable[Sequence[float]]) -> dict[str, list[list[float]]]:
    """The JSON body of `POST /predict/batch` for these rows, in order."""
    return {"instances": [list(row) for row in rows]}
