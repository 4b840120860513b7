"""Classification summaries of a trained network's predictions."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """``C[t, p]`` = number of examples of true class ``t`` predicted as ``p`` (rows sum to the
    class counts; the trace is the number of correct predictions)."""
    c = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(c, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return c
