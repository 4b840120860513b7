"""Shared pieces of the model zoo: activations and scaled initialisers."""

from __future__ import annotations

import flax.linen as nn
import jax

ACTIVATIONS = {
    "relu": nn.relu,
    "tanh": nn.tanh,
    "gelu": nn.gelu,
    "elu": nn.elu,
    "softplus": nn.softplus,
    "sigmoid": nn.sigmoid,
    "identity": lambda x: x,
}


def activation(name: str):
    """Activation function by name; unknown names raise listing the valid ones."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]


def scaled_init(scale: float):
    """LeCun-normal initialiser times ``scale`` (variance ``scale^2 / fan_in``)."""
    base = nn.initializers.lecun_normal()

    def init(key, shape, dtype=jax.numpy.float32):
        return scale * base(key, shape, dtype)

    return init
