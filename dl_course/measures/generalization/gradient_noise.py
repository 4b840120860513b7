"""Gradient noise: the variance of minibatch gradients at a point (an optimization-based measure
in Jiang et al. 2020, App. C.5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

PyTree = Any


def gradient_noise(
    batch_loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    data: PyTree,
    batch_size: int,
    *,
    key: jax.Array,
) -> jax.Array:
    """Mean squared deviation of minibatch gradients from the full-batch gradient,

        V_B = (1/K) Σ_k ‖∇L_{B_k}(θ) − ∇L(θ)‖²,

    over the ``K = ⌊n/B⌋`` disjoint batches ``B_k`` of one random permutation of ``data`` (drawn
    from ``key``; an epoch of SGD with batch size ``B``), ``∇L`` the gradient of the mean loss over
    all ``n`` examples. ``E V_B = tr Σ · (n−B) / (B (n−1))`` with ``Σ`` the per-example gradient
    covariance (sampling without replacement), so ``B = 1`` gives the per-example variance
    ``(1/n) Σ_i ‖∇ℓ_i − ∇L‖²`` and ``B = n`` gives 0. Jiang et al. (2020) measure the variance of
    the gradients at the end of training; this is that quantity for SGD batches of size ``B``.
    ``batch_loss_fn(params, batch) -> mean loss`` over a batch pytree with a leading example
    axis. Batch gradients are evaluated sequentially with ``lax.map``.
    """
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    k = n // batch_size
    perm = jax.random.permutation(key, n)[: k * batch_size].reshape(k, batch_size)
    batches = jax.tree_util.tree_map(lambda x: x[perm], data)

    def flat_grad(batch):
        return ravel_pytree(jax.grad(batch_loss_fn)(params, batch))[0]

    full = flat_grad(data)
    sq = jax.lax.map(lambda b: jnp.sum((flat_grad(b) - full) ** 2), batches)
    return jnp.mean(sq)
