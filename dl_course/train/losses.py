"""Per-example losses. The training objective is their **mean over examples** (recorded as
``loss_reduction: mean`` with every result).

For a network output ``f`` (logits, one row per example) and label ``y``:

* ``cross_entropy``: ``-log softmax(f)_y``.
* ``mse``: ``1/2 ||f - e_y||^2`` with one-hot ``e_y`` for classification, ``1/2 ||f - y||^2`` for
  regression (the convention of Cohen et al. 2021, whose sharpness thresholds assume it).
* ``logistic``: binary, scalar output, ``s = 2y - 1 in {-1, +1}``: ``log(1 + exp(-s f))``.
* ``hinge``: binary ``max(0, 1 - s f)``; multiclass (Crammer & Singer 2001)
  ``max(0, 1 + max_{j != y} f_j - f_y)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cross_entropy(outputs, y, num_classes):
    # one-hot form: its gradient softmax(f) - e_y is elementwise (the integer-label gather's
    # gradient is a scatter, a separate kernel per step on CPU)
    onehot = jax.nn.one_hot(y, outputs.shape[-1], dtype=outputs.dtype)
    return -jnp.sum(onehot * jax.nn.log_softmax(outputs, axis=-1), axis=-1)


def mse(outputs, y, num_classes):
    target = jax.nn.one_hot(y, num_classes, dtype=outputs.dtype) if num_classes > 0 else y
    return 0.5 * jnp.sum((outputs - target.reshape(outputs.shape)) ** 2, axis=-1)


def _signs(y):
    return 2.0 * y.astype(jnp.float32) - 1.0


def logistic(outputs, y, num_classes):
    return jax.nn.softplus(-_signs(y) * outputs[..., 0])


def hinge(outputs, y, num_classes):
    if outputs.shape[-1] == 1:
        return jax.nn.relu(1.0 - _signs(y) * outputs[..., 0])
    true = jnp.take_along_axis(outputs, y[:, None], axis=-1)[:, 0]
    others = jnp.where(jax.nn.one_hot(y, outputs.shape[-1], dtype=bool), -jnp.inf, outputs)
    return jax.nn.relu(1.0 + others.max(-1) - true)


LOSSES = {"cross_entropy": cross_entropy, "mse": mse, "logistic": logistic, "hinge": hinge}
BINARY_ONLY = {"logistic"}


def get(name: str):
    """Per-example loss ``(outputs, y, num_classes) -> [n]`` by name."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]


def correct(outputs, y):
    """Per-example 0/1 correctness: ``argmax`` for several outputs, ``sign`` for one output."""
    if outputs.shape[-1] == 1:
        pred = (outputs[..., 0] > 0).astype(y.dtype)
    else:
        pred = jnp.argmax(outputs, -1).astype(y.dtype)
    return (pred == y).astype(jnp.float32)
