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


def pick_on_validation(candidates, scores, *, higher_is_better: bool = True) -> dict:
    """The candidate with the best mean validation score over seeds (``scores [seeds, candidates]``,
    NaN = a run that diverged, counted as the worst score), and whether it is *interior*: not the
    first or last candidate of the sorted grid. A pick at the edge means the grid is too narrow
    (the optimum may lie beyond it)."""
    cand = np.asarray(candidates, dtype=float)
    s = np.asarray(scores, dtype=float).reshape(-1, cand.size)
    worst = -np.inf if higher_is_better else np.inf
    mean = np.mean(np.where(np.isfinite(s), s, worst), axis=0)
    i = int(np.argmax(mean) if higher_is_better else np.argmin(mean))
    order = np.argsort(cand)
    return {"index": i, "value": float(cand[i]), "interior": bool(order[0] != i and order[-1] != i),
            "mean_scores": [float(v) for v in mean]}
