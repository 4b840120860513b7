"""scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test set, 1797 images).

Pixel values 0..16 are scaled to [0, 1]. The train/test split is a fixed stratified split
(``test_fraction`` 0.25 by default, ``split_seed`` 0), so every run sees the same split.
"""

from __future__ import annotations

import numpy as np

from dl_course.data.dataset import Dataset, make_dataset


def load_digits(test_fraction: float = 0.25, split_seed: int = 0, flatten: bool = False) -> Dataset:
    """Load the 8x8 digits as images ``[n, 8, 8, 1]`` (or ``[n, 64]`` with ``flatten``)."""
    from sklearn.datasets import load_digits as sk_load
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    d = sk_load()
    x = (d.images / 16.0).astype(np.float32)
    x = x.reshape(len(x), -1) if flatten else x[..., None]
    y = d.target.astype(np.int32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, stratify=y, random_state=split_seed)
    info = {"source": "sklearn.datasets.load_digits", "scaling": "pixels / 16", "test_fraction": test_fraction,
            "split_seed": split_seed, "n_train": len(x_tr), "n_test": len(x_te)}
    return make_dataset(x_tr, y_tr, x_te, y_te, 10, "digits", info)
