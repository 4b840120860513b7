"""Shared fixtures for the measures tests: a tiny tanh MLP (3-5-3, 38 parameters) on 20 examples,
small enough that its Hessian is computed exactly and densely in float64.

Every test here runs with float64 enabled (autouse fixture, restored afterwards); the session
fixtures create their arrays inside the same context so they are float64 too.
"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def mlp_init(seed, sizes=(3, 5, 3), scale=1.5):
    """Random MLP parameters (float64) from a numpy seed: test constants, not traced code."""
    rng = np.random.default_rng(seed)
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"w{i}"] = jnp.asarray(scale * rng.standard_normal((a, b)) / np.sqrt(a))
        params[f"b{i}"] = jnp.asarray(0.3 * rng.standard_normal(b))
    return params


def mlp_apply(params, x):
    n = len(params) // 2
    for i in range(n):
        x = x @ params[f"w{i}"] + params[f"b{i}"]
        if i < n - 1:
            x = jnp.tanh(x)
    return x


def example_losses(params, x, y):
    logp = jax.nn.log_softmax(mlp_apply(params, x))
    return -jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]


def mean_loss(params, x, y):
    return jnp.mean(example_losses(params, x, y))


@pytest.fixture(scope="session")
def tiny():
    """Namespace: params, x, y, loss (params -> scalar), flat, unravel, hessian (dense, numpy),
    dim, and the model functions init(seed), apply(params, x), example_losses(params, x, y),
    mean_loss(params, x, y)."""
    with jax.enable_x64(True):
        params = mlp_init(0)
        rng = np.random.default_rng(1)
        x = jnp.asarray(rng.standard_normal((20, 3)))
        y = jnp.asarray(rng.integers(0, 3, 20), jnp.int32)

        @jax.jit
        def dense_hessian(params):
            flat, unravel = ravel_pytree(params)
            return jax.hessian(lambda f: mean_loss(unravel(f), x, y))(flat)

        hessian = dense_hessian(params)
        flat, unravel = ravel_pytree(params)
        hessian = np.asarray(hessian)
        loss = lambda p: mean_loss(p, x, y)  # noqa: E731
    return types.SimpleNamespace(
        params=params, x=x, y=y, loss=loss, flat=flat, unravel=unravel, hessian=hessian,
        dim=flat.shape[0], init=mlp_init, apply=mlp_apply, example_losses=example_losses,
        mean_loss=mean_loss,
    )
