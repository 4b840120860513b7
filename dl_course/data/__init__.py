"""Datasets: ``load(name, **options) -> Dataset`` (mnist1d, digits, synthetic, tfds:<name>).

Evaluation and study sets, imported explicitly (they pull in mnist1d, scipy or the generative
models): ``shifted_mnist1d`` and ``shifted_sets`` (test sets under distribution shift, a validation
split), ``ood_sets`` (out-of-distribution sets), ``generative_images`` (rescaled and dequantised
images for score models), ``toy_densities`` (2D toy data with reference densities).
"""

from dl_course.data.dataset import Dataset, make_dataset
from dl_course.data.registry import REGISTRY, check_name, load, names
from dl_course.data.splits import fold_datasets, kfold_indices, train_val_split
from dl_course.data.transforms import (
                                       one_hot,
                                       random_inputs,
                                       randomize_labels,
                                       shuffle_inputs,
                                       standardize,
                                       subsample_per_class,
                                       with_random_labels,
)

__all__ = [  # the public names, re-exported from the modules above
    "Dataset", "REGISTRY", "check_name", "fold_datasets", "kfold_indices", "load", "make_dataset", "names", "one_hot",
    "random_inputs", "randomize_labels", "shuffle_inputs", "standardize", "subsample_per_class", "train_val_split",
    "with_random_labels",
]
