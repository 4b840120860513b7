"""Out-of-distribution evaluation sets: held-out classes, noise inputs, and dataset pairs.

* Held-out classes: train on C − k classes and treat test examples of the k others as OOD (a "near
  OOD" set: same sensor, same preprocessing, new semantics).
* Noise inputs: Gaussian with the in-distribution data's per-feature mean and standard deviation,
  or uniform over its global range ("far OOD"; Hendrycks & Gimpel 2017 use both kinds).
* Dataset pairs for tfds datasets, when prepared: MNIST vs Fashion-MNIST and CIFAR-10 vs SVHN
  (Nalisnick et al. 2019; Lakshminarayanan et al. 2017 use SVHN as OOD for CIFAR-10 models).

Numpy data preparation (not traced), deterministic given the seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

OOD_PAIRS: dict[str, tuple[str, str]] = {
    "mnist_vs_fashion_mnist": ("tfds:mnist", "tfds:fashion_mnist"),
    "cifar10_vs_svhn": ("tfds:cifar10", "tfds:svhn_cropped"),
}
NOISE_KINDS = ("gaussian", "uniform")


def split_classes(dataset, held_out: Sequence[int]):
    """Splits a classification ``Dataset`` into (in-distribution, OOD) by class.

    The in-distribution dataset keeps the examples of the other classes, relabelled to
    ``0 … C − k − 1`` in increasing order of the original label (``info["class_map"]`` maps
    original -> new); the OOD dataset keeps the examples (train and test) of the ``held_out``
    classes with their original labels. Both record ``info["held_out_classes"]``.
    """
    held = sorted({int(c) for c in held_out})
    if dataset.num_classes < 2:
        raise ValueError("split_classes needs a classification dataset.")
    if not held or any(c < 0 or c >= dataset.num_classes for c in held):
        raise ValueError(f"held_out must be non-empty classes in [0, {dataset.num_classes}); got {held}")
    if len(held) >= dataset.num_classes - 1:
        raise ValueError("At least two classes must stay in distribution.")
    kept = [c for c in range(dataset.num_classes) if c not in held]
    relabel = np.full(dataset.num_classes, -1, dtype=np.int32)
    relabel[kept] = np.arange(len(kept), dtype=np.int32)
    in_train = ~np.isin(dataset.y_train, held)
    in_test = ~np.isin(dataset.y_test, held)
    info = {**dict(dataset.info or {}), "held_out_classes": held}
    in_dist = dataclasses.replace(
        dataset,
        x_train=dataset.x_train[in_train],
        y_train=relabel[dataset.y_train[in_train]],
        x_test=dataset.x_test[in_test],
        y_test=relabel[dataset.y_test[in_test]],
        num_classes=len(kept),
        name=f"{dataset.name}-without-{'-'.join(map(str, held))}",
        info={**info, "class_map": {int(c): int(relabel[c]) for c in kept}},
    )
    ood = dataclasses.replace(
        dataset,
        x_train=dataset.x_train[~in_train],
        y_train=dataset.y_train[~in_train],
        x_test=dataset.x_test[~in_test],
        y_test=dataset.y_test[~in_test],
        name=f"{dataset.name}-classes-{'-'.join(map(str, held))}",
        info=info,
    )
    return in_dist, ood


def noise_inputs(reference_x: np.ndarray, num: int, seed: int, kind: str = "gaussian") -> np.ndarray:
    """``num`` noise inputs shaped like ``reference_x[0]`` and on its scale (float32).

    ``gaussian``: x_j ~ N(μ_j, σ_j²) independently per feature j, with μ_j, σ_j the per-feature mean
    and standard deviation of ``reference_x`` (marginals matched, correlations destroyed).
    ``uniform``: x_j ~ U[min(reference_x), max(reference_x)] (the global range).
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"Unknown noise kind {kind!r}; valid: {', '.join(NOISE_KINDS)}")
    ref = np.asarray(reference_x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    shape = (num,) + ref.shape[1:]
    if kind == "gaussian":
        out = ref.mean(axis=0) + ref.std(axis=0) * rng.standard_normal(shape)
    else:
        out = rng.uniform(ref.min(), ref.max(), size=shape)
    return out.astype(np.float32)


def load_ood_pair(name: str, load: Callable[..., Any] | None = None, **options):
    """``(in_dataset, ood_x_test)`` for a pair in ``OOD_PAIRS`` (tfds datasets must be prepared).

    Both datasets go through the same loader with the same ``options``; the OOD inputs must be
    preprocessed exactly like the in-distribution ones (a loader that standardises each dataset
    with its own statistics would leak information about the OOD set). ``load`` defaults to
    ``dl_course.data.load``.
    """
    if name not in OOD_PAIRS:
        raise ValueError(f"Unknown OOD pair {name!r}; valid: {', '.join(OOD_PAIRS)}")
    if load is None:
        from dl_course.data import load  # noqa: PLC0415  (data is a lower layer, loaded lazily)
    in_name, out_name = OOD_PAIRS[name]
    in_dataset = load(in_name, **options)
    out_dataset = load(out_name, **options)
    if tuple(in_dataset.input_shape) != tuple(out_dataset.input_shape):
        raise ValueError(
            f"{in_name} inputs {in_dataset.input_shape} and {out_name} inputs "
            f"{out_dataset.input_shape} differ; resize or choose a matching pair."
        )
    return in_dataset, out_dataset.x_test
