"""Few-label setups: a labelled pool of ``n`` examples per class tiled to a fixed size, and the
source/target task pairs of the transfer experiments (a differently generated MNIST-1D; the other
digit classes).

The ``n`` labelled examples are tiled to a pool size divisible by ``num_classes * n`` for every n
of a study (:func:`pool_size`), so every n shares one compiled program; minibatches drawn from
per-epoch permutations of the tiled pool weight every labelled example equally. Sources follow
Yosinski et al. (2014, "How transferable are features in deep neural networks?"): pretrain on a
related task, then reuse the features on the few-label target task.
"""

from __future__ import annotations

import math

import numpy as np

from dl_course.data.dataset import Dataset, make_dataset
from dl_course.data.mnist1d import generate_cached, generator_args
from dl_course.data.registry import load
from dl_course.data.transforms import subsample_per_class


def source_and_target(dataset: str, source_generator: dict, digits_source_classes: int = 5) -> tuple[Dataset, Dataset]:
    """(source task, target task) of ``dataset``: for ``mnist1d`` the standard MNIST-1D as target
    and one regenerated with ``source_generator`` (``dl_course.data.mnist1d.generator_args``
    keywords: seed, noise, shear) as source, all 10 classes; for ``digits`` the classes
    ``0..digits_source_classes-1`` as source and the others, relabelled from 0, as target."""
    if dataset == "mnist1d":
        target = load("mnist1d")
        g = generate_cached(generator_args(**dict(source_generator)))
        source = make_dataset(g["x"], g["y"], g["x_test"], g["y_test"], 10, "mnist1d_source",
                                       {"generator": dict(source_generator)})
        return source, target
    if dataset == "digits":
        d = load("digits")
        split = int(digits_source_classes)

        def part(x, y, lo, hi):
            keep = (y >= lo) & (y < hi)
            return x[keep], y[keep] - lo

        xs, ys = part(d.x_train, d.y_train, 0, split)
        xst, yst = part(d.x_test, d.y_test, 0, split)
        xt, yt = part(d.x_train, d.y_train, split, 10)
        xtt, ytt = part(d.x_test, d.y_test, split, 10)
        source = make_dataset(xs, ys, xst, yst, split, "digits_source", {"classes": list(range(split))})
        target = make_dataset(xt, yt, xtt, ytt, 10 - split, "digits_target",
                                       {"classes": list(range(split, 10)), "relabelled": f"class c -> c - {split}"})
        return source, target
    raise ValueError(f"unknown dataset {dataset!r} for augmentation_transfer; valid: digits, mnist1d")

def pool_size(num_classes: int, labels_per_class) -> int:
    """Smallest size divisible by ``num_classes * n`` for every n (the tiled training pool)."""
    return int(math.lcm(*[num_classes * int(n) for n in labels_per_class]))

def labelled_pool(target: Dataset, n: int, subset_seed: int, size: int) -> Dataset:
    """``n`` random labelled examples per class (``subsample_per_class``), tiled to ``size``."""
    sub = subsample_per_class(target, n, seed=subset_seed)
    reps = size // sub.n_train
    if reps * sub.n_train != size:
        raise ValueError(f"pool size {size} is not a multiple of {sub.n_train} labelled examples")
    return sub.replace(x_train=np.tile(sub.x_train, (reps,) + (1,) * (sub.x_train.ndim - 1)),
                       y_train=np.tile(sub.y_train, reps), info={"tiled": reps, "labelled": sub.n_train})
