"""Tiny flax models and fixtures for the uncertainty tests (dl_course.models is not needed)."""

import flax.linen as nn
import jax
import pytest


class Block(nn.Module):
    """Dense -> BatchNorm -> relu, as a submodule so BatchNorm sits at a nested path."""

    features: int
    momentum: float = 0.9

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(self.features)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum)(x)
        return nn.relu(x)


class TinyNet(nn.Module):
    """Input BatchNorm, a nested Dense-BN block, optional dropout, linear head.

    ``dropout_as_attribute`` chooses ``nn.Dropout(rate, deterministic=not train)(x)`` instead of
    ``nn.Dropout(rate)(x, deterministic=not train)`` (both styles occur in flax code).
    """

    hidden: int = 8
    num_classes: int = 3
    dropout: float = 0.0
    batchnorm: bool = True
    momentum: float = 0.9
    dropout_as_attribute: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.batchnorm:
            x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum)(x)
            x = Block(self.hidden, self.momentum)(x, train)
        else:
            x = nn.relu(nn.Dense(self.hidden)(x))
        if self.dropout:
            if self.dropout_as_attribute:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
            else:
                x = nn.Dropout(self.dropout)(x, deterministic=not train)
        return nn.Dense(self.num_classes)(x)


@pytest.fixture
def x64():
    """float64 inside the test only (restores the previous setting afterwards)."""
    with jax.enable_x64(True):
        yield


def init_variables(model, x, seed=0, runs=None):
    """Variables of ``model`` for inputs like ``x`` without compiling ``model.init``.

    Shapes come from ``jax.eval_shape`` (tracing only); values are numpy draws: kernels
    N(0, 1/fan_in), biases N(0, 0.1²), BatchNorm scales 1 + N(0, 0.1²), running mean 0 / var 1.
    (jit-compiling flax init means one random-bits kernel per leaf: seconds of XLA compile on a
    loaded 2-core machine, for values these tests do not care about.) ``runs`` adds a leading axis
    of independently drawn members.
    """
    import numpy as np
    from flax import traverse_util

    shapes = jax.eval_shape(model.init, jax.random.key(0), x)
    rng = np.random.default_rng(seed)
    lead = () if runs is None else (runs,)

    def draw(path, spec):
        shape = lead + spec.shape
        name = path[-1]
        if path[0] == "batch_stats":
            return np.zeros(shape, np.float32) if name == "mean" else np.ones(shape, np.float32)
        if name == "kernel":
            return (rng.standard_normal(shape) / np.sqrt(spec.shape[0])).astype(np.float32)
        if name == "scale":
            return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)

    flat = traverse_util.flatten_dict(shapes)
    return jax.tree_util.tree_map(
        jax.numpy.asarray, traverse_util.unflatten_dict({p: draw(p, s) for p, s in flat.items()})
    )
