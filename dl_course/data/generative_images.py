"""Image data for score models: rescaling, dequantised training copies, and a classifier for a
classifier-based sample score (Song et al. 2021; Theis et al. 2016 for dequantisation; Salimans
et al. 2016 for the score the classifier feeds)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import data as data_lib
from dl_course.data.dataset import make_dataset
from dl_course.generative.likelihood import dequantize


def rescaled(data: data_lib.Dataset, low: float, high: float) -> data_lib.Dataset:
    """Images ``x ∈ [0, 1] -> low + (high − low) x`` (labels kept; a score task ignores them)."""
    f = lambda x: low + (high - low) * x
    return make_dataset(f(data.x_train), data.y_train, f(data.x_test), data.y_test, data.num_classes, data.name,
                        {**data.info, "rescaled_to": [low, high]})


def dequantized_training_set(data: data_lib.Dataset, copies: int, levels: int, low: float, high: float,
                             seed: int = 0) -> data_lib.Dataset:
    """``copies`` uniformly dequantised copies ``x + u``, ``u ~ U[0, (high − low)/(levels − 1))``
    of the training images (``dequantize``, fixed noise), so that the model is fitted to the
    continuous density whose likelihood ``bits_per_dim`` converts (Theis et al. 2016). Test images
    unchanged."""
    keys = jax.random.split(jax.random.key(seed), copies)
    x = np.concatenate([np.asarray(dequantize(k, jnp.asarray(data.x_train), levels, low, high)) for k in keys])
    return make_dataset(x, np.tile(data.y_train, copies), data.x_test, data.y_test, data.num_classes, data.name,
                        {**data.info, "dequantized_copies": copies})


def fit_classifier(data: data_lib.Dataset, max_iter: int = 1000):
    """Multinomial logistic regression (scikit-learn, C = 1) on flattened ``[0, 1]`` training images;
    returns ``(logits_fn, test_accuracy)`` with ``logits_fn(x [n, ...]) = x W^T + b  [n, C]``."""
    from sklearn.linear_model import LogisticRegression

    flat = lambda x: np.asarray(x, np.float32).reshape(len(x), -1)
    clf = LogisticRegression(max_iter=max_iter, C=1.0).fit(flat(data.x_train), data.y_train)
    w, b = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
    return (lambda x: jnp.asarray(flat(x)) @ w.T + b), float(clf.score(flat(data.x_test), data.y_test))
