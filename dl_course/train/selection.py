"""Choosing a hyperparameter from cross-validation errors (Hastie, Tibshirani & Friedman,
"Elements of Statistical Learning", 7.10; Breiman et al. 1984 for the one-standard-error rule)."""

from __future__ import annotations

import numpy as np


def choose(candidates, cv_mean, cv_std, k: int) -> dict:
    """argmin of the CV error, and the one-standard-error choice: the largest candidate (most
    regularised) with CV error <= min + std_at_min / sqrt(k)."""
    cv_mean, cv_std = np.asarray(cv_mean), np.asarray(cv_std)
    best = int(np.argmin(cv_mean))
    within = np.flatnonzero(cv_mean <= cv_mean[best] + cv_std[best] / np.sqrt(k))
    one_se = int(max(within, key=lambda i: candidates[i]))
    return {"best": best, "one_se": one_se}
