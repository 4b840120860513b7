"""The in-memory dataset record every loader returns."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/test split held as numpy arrays.

    Attributes:
      x_train, x_test: float32 inputs, shape ``[n, *input_shape]``.
      y_train, y_test: int32 class labels in ``[0, num_classes)`` for classification, float32
        targets ``[n, d_out]`` for regression.
      num_classes: number of classes, 0 for regression.
      input_shape: shape of one input example.
      name: registry name the data came from.
      info: conventions (generator parameters, split sizes, preprocessing) recorded with results.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple
    name: str = ""
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def is_classification(self) -> bool:
        return self.num_classes > 0

    def replace(self, **changes: Any) -> Dataset:
        """Return a copy with fields replaced (``info`` entries are merged, not replaced)."""
        if "info" in changes:
            changes["info"] = {**self.info, **changes["info"]}
        return dataclasses.replace(self, **changes)


def make_dataset(x_train, y_train, x_test, y_test, num_classes: int, name: str, info: dict) -> Dataset:
    """Build a Dataset with the dtype conventions (float32 inputs, int32 labels / float32 targets)."""
    label_dtype = np.int32 if num_classes > 0 else np.float32
    x_train = np.ascontiguousarray(x_train, dtype=np.float32)
    x_test = np.ascontiguousarray(x_test, dtype=np.float32)
    return Dataset(
        x_train=x_train,
        y_train=np.ascontiguousarray(y_train, dtype=label_dtype),
        x_test=x_test,
        y_test=np.ascontiguousarray(y_test, dtype=label_dtype),
        num_classes=int(num_classes),
        input_shape=tuple(x_train.shape[1:]),
        name=name,
        info=dict(info),
    )
