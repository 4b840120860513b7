"""How fast and how much a network memorizes: steps to fit the training set, corrupted labels.

Zhang, Bengio, Hardt, Recht & Vinyals (2017, ICLR), "Understanding deep learning requires
rethinking generalization", Fig. 1a–b: the time to reach 100% training accuracy grows with the
fraction of random labels. Both functions work on the engine's outputs (``SweepResult.steps``,
``metrics["train_accuracy"]``, ``SweepResult.train_labels``).
"""

from __future__ import annotations

import numpy as np


def steps_to_fit(steps, train_accuracy, threshold: float = 1.0) -> np.ndarray:
    """``T_i = min { steps[t] : acc[i, t] ≥ threshold }`` per run (``[run, eval]`` -> ``[run]``,
    NaN if never). Accuracies are means over a finite set, so ``threshold = 1.0`` means every
    example is classified correctly (a float32 mean of n ones is exactly 1; 1e-7 of rounding is
    tolerated)."""
    acc = np.asarray(train_accuracy)
    hit = acc >= threshold - 1e-7
    first = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), np.asarray(steps)[first].astype(float), np.nan)


def corrupted_fraction(y_runs, y_clean) -> np.ndarray:
    """``mean_j [y_runs[i, j] ≠ y_clean[j]]`` per run: the fraction of training labels that
    differ from the clean ones (``≈ (1 − 1/K) p`` when a fraction ``p`` is redrawn uniformly over
    ``K`` classes, since a redrawn label keeps its value with probability ``1/K``)."""
    return np.mean(np.asarray(y_runs) != np.asarray(y_clean)[None], axis=1)
