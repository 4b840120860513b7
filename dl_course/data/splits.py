"""Index splits: k-fold cross-validation (and its fold datasets) and held-out validation sets."""

from __future__ import annotations

import numpy as np


def kfold_indices(n: int, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split ``range(n)`` into ``k`` folds after one seeded shuffle.

    Returns ``[(train_idx, val_idx)] * k``; the validation folds partition ``range(n)`` exactly
    and their sizes differ by at most one.
    """
    if not 2 <= k <= n:
        raise ValueError(f"k-fold needs 2 <= k <= n, got k={k}, n={n}")
    perm = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(perm, k)
    return [(np.sort(np.concatenate(folds[:i] + folds[i + 1:])), np.sort(f)) for i, f in enumerate(folds)]


def train_val_split(n: int, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)`` into train and validation indices."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def fold_datasets(data, k: int, seed: int) -> list:
    """For each fold, a Dataset whose training set is the other k-1 folds and whose *test* set is
    the held-out fold (so the engine's test metrics are the validation metrics)."""
    out = []
    for i, (tr, va) in enumerate(kfold_indices(data.n_train, k, seed)):
        out.append(data.replace(x_train=data.x_train[tr], y_train=data.y_train[tr], x_test=data.x_train[va],
                                y_test=data.y_train[va], info={"fold": i, "k": k, "fold_seed": seed}))
    return out
