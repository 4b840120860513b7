"""Sharpness as curvature along a direction: λmax of the loss, and the batch sharpness of
minibatch losses (their top eigenvalue, or their curvature along their own gradient).

λmax is the edge-of-stability quantity of Cohen et al. (2021); the minibatch versions are its SGD
analogues (Wu, Ma & E 2018; Jastrzębski et al. 2020; Andreyev & Beneventano 2024). Every function
spends a fixed number of HVPs, so it jits and vmaps over a leading run axis of ``params``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dl_course.measures.curvature.products import hvp
from dl_course.measures.curvature.spectrum import DEFAULT_NUM_ITERS, hessian_eigenpairs

PyTree = Any


def lambda_max(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    *,
    key: jax.Array,
    num_iters: int = DEFAULT_NUM_ITERS,
) -> tuple[jax.Array, jax.Array]:
    """Top Hessian eigenvalue and its Ritz residual ``(λmax, ‖Hu − λu‖)`` by Lanczos.

    The edge-of-stability measure (Cohen et al. 2021): full-batch GD with step ``η`` is stable on
    the local quadratic model only while ``λmax < 2/η``.
    """
    res = hessian_eigenpairs(loss_fn, params, 1, key=key, num_iters=num_iters)
    return res.eigenvalues[0], res.residuals[0]


def _sample_batches(key: jax.Array, data: PyTree, batch_size: int, num_batches: int) -> PyTree:
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    idx = jax.vmap(lambda k: jax.random.choice(k, n, (batch_size,), replace=False))(
        jax.random.split(key, num_batches)
    )
    return jax.tree_util.tree_map(lambda x: x[idx], data)


def _mean_and_stderr(values: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean over the batches and its standard error ``std(ddof=1)/√num_batches``."""
    return jnp.mean(values), jnp.std(values, ddof=1) / jnp.sqrt(values.shape[0])


def batch_sharpness(
    batch_loss_fn: Callable[[PyTree, PyTree], jax.Array], params: PyTree, data: PyTree, batch_size: int, *,
    key: jax.Array, num_batches: int = 8, num_iters: int = 20,
) -> tuple[jax.Array, jax.Array]:
    """Mean top eigenvalue of minibatch Hessians, ``E_B[λmax(∇²L_B(θ))]``, and its standard error.

    The SGD analogue of λmax: SGD with step ``η`` on batch ``B`` is unstable along the top
    direction of ``∇²L_B`` once ``λmax(∇²L_B) > 2/η`` (Wu, Ma & E 2018; Jastrzębski et al. 2020
    track minibatch sharpness). Since ``λmax`` is convex in the matrix,
    ``E_B λmax(H_B) ≥ λmax(E_B H_B) = λmax(H)``. ``num_batches`` batches of ``batch_size``
    examples (each without replacement) are drawn from ``key``; one Lanczos run of ``num_iters``
    HVPs per batch, evaluated sequentially with ``lax.map``.
    """
    batches = _sample_batches(key, data, batch_size, num_batches)

    def one(args):
        batch, k = args
        return lambda_max(lambda p: batch_loss_fn(p, batch), params, key=k, num_iters=num_iters)[0]

    return _mean_and_stderr(jax.lax.map(one, (batches, jax.random.split(jax.random.fold_in(key, 1), num_batches))))


def directional_batch_sharpness(
    batch_loss_fn: Callable[[PyTree, PyTree], jax.Array], params: PyTree, data: PyTree, batch_size: int, *,
    key: jax.Array, num_batches: int = 8,
) -> tuple[jax.Array, jax.Array]:
    """``E_B[g_Bᵀ H_B g_B / ‖g_B‖²]``, the curvature of each minibatch loss along its own gradient,
    and its standard error (the "batch sharpness" of Andreyev & Beneventano 2024, "Edge of
    stochastic stability", which hovers at ``2/η`` under SGD). One gradient and one HVP per batch.
    """
    batches = _sample_batches(key, data, batch_size, num_batches)

    def one(batch):
        f = lambda p: batch_loss_fn(p, batch)  # noqa: E731
        g = jax.grad(f)(params)
        hg = hvp(f, params, g)
        gf, hgf = ravel_pytree(g)[0], ravel_pytree(hg)[0]
        return jnp.vdot(gf, hgf) / jnp.vdot(gf, gf)

    return _mean_and_stderr(jax.lax.map(one, batches))
