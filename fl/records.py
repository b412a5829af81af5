"""Conversions between Flower records and the numpy weight dicts the task code uses."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from flwr.app import Array, ArrayRecord


def to_numpy(record: ArrayRecord) -> OrderedDict[str, np.ndarray]:
    return OrderedDict((key, array.numpy()) for key, array in record.items())


def from_numpy(weights: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord(
        OrderedDict((key, Array(np.ascontiguousarray(v))) for key, v in weights.items())
    )
