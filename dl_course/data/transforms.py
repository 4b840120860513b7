"""Dataset transforms: label randomization and noise, per-class subsampling, standardization,
one-hot targets.

These act on numpy arrays before training (data preparation, seeded numpy Generators). The
in-graph version of label randomization used when the fraction is a swept hyperparameter lives in
``dl_course.train.data_in_graph``.
"""

from __future__ import annotations

import numpy as np

from dl_course.data.dataset import Dataset


def randomize_labels(y: np.ndarray, fraction: float, num_classes: int, seed: int = 0,
                     exclude_true: bool = False) -> np.ndarray:
    """Replace the labels of a random ``fraction`` of examples (exactly ``round(fraction*n)``).

    New labels are uniform over ``num_classes`` (Zhang et al. 2017: "random labels"), so about
    1/num_classes of the chosen ones keep their label by chance; with ``exclude_true`` they are
    uniform over the *other* classes (label noise in the sense of Nakkiran et al. 2019, where a
    noisy label is always wrong).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    y = np.array(y, copy=True)
    n = len(y)
    idx = rng.permutation(n)[: int(round(fraction * n))]
    if exclude_true:
        shift = rng.integers(1, num_classes, size=len(idx))
        y[idx] = (y[idx] + shift) % num_classes
    else:
        y[idx] = rng.integers(0, num_classes, size=len(idx))
    return y


def with_random_labels(data: Dataset, fraction: float, seed: int = 0, exclude_true: bool = False) -> Dataset:
    """Dataset with a fraction of its *training* labels randomized (test labels untouched)."""
    y = randomize_labels(data.y_train, fraction, data.num_classes, seed, exclude_true)
    kind = "label_noise" if exclude_true else "random_labels"
    return data.replace(y_train=y, info={kind: {"fraction": fraction, "seed": seed}})


def subsample_per_class(data: Dataset, per_class: int, seed: int = 0) -> Dataset:
    """Keep ``per_class`` random training examples of each class (few-label regimes)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(data.num_classes):
        idx = np.flatnonzero(data.y_train == c)
        if len(idx) < per_class:
            raise ValueError(f"class {c} has only {len(idx)} training examples, asked for {per_class}")
        keep.append(rng.choice(idx, size=per_class, replace=False))
    keep = np.sort(np.concatenate(keep))
    return data.replace(x_train=data.x_train[keep], y_train=data.y_train[keep],
                        info={"per_class": per_class, "subsample_seed": seed})


def standardize(data: Dataset, per_feature: bool = False, eps: float = 1e-8) -> Dataset:
    """Standardize inputs with statistics of the *training* set (global or per feature)."""
    axis = 0 if per_feature else None
    mean = data.x_train.mean(axis=axis, keepdims=per_feature)
    std = data.x_train.std(axis=axis, keepdims=per_feature) + eps
    return data.replace(x_train=((data.x_train - mean) / std).astype(np.float32),
                        x_test=((data.x_test - mean) / std).astype(np.float32),
                        info={"standardized": "per feature" if per_feature else "global"})


def one_hot(y: np.ndarray, num_classes: int, dtype=np.float32) -> np.ndarray:
    """One-hot encode integer labels (targets for MSE on classification data)."""
    return np.eye(num_classes, dtype=dtype)[np.asarray(y)]


def shuffle_inputs(data: Dataset, seed: int = 0) -> Dataset:
    """Apply one fixed random permutation to the input features of every example (Zhang et al.)."""
    flat_tr = data.x_train.reshape(data.n_train, -1)
    flat_te = data.x_test.reshape(data.n_test, -1)
    perm = np.random.default_rng(seed).permutation(flat_tr.shape[1])
    return data.replace(x_train=flat_tr[:, perm].reshape(data.x_train.shape),
                        x_test=flat_te[:, perm].reshape(data.x_test.shape),
                        info={"shuffled_inputs_seed": seed})


def random_inputs(data: Dataset, seed: int = 0) -> Dataset:
    """Replace training inputs by Gaussian noise with the training set's mean and std (Zhang et al.)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(data.x_train.mean(), data.x_train.std(), size=data.x_train.shape).astype(np.float32)
    return data.replace(x_train=x, info={"random_inputs_seed": seed})
