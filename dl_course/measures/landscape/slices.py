"""Loss-landscape slices (Li et al. 2018, "Visualizing the loss landscape of neural nets").

A slice evaluates ``fn(θ + Σ_k c_k d_k)`` on a grid of coefficients ``c`` for directions ``d_k``
(pytrees like the parameters). Grid points are generated on the fly from the coefficients and
evaluated with ``jax.lax.map(..., batch_size=b)``, i.e. ``b`` points vmapped at a time — never a
Python loop over points, and never a ``(points × parameters)`` array. ``fn`` may return a scalar
or a pytree of scalars (e.g. ``{"loss": ..., "accuracy": ...}``); every leaf comes back with the
grid's shape.

Directions: random Gaussian, filter-normalized (Li et al. §4), the top principal components of
an optimization trajectory (Li et al. §7), and top Hessian eigenvectors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dl_course import linalg
from dl_course.measures.curvature.spectrum import DEFAULT_NUM_ITERS, hessian_eigenpairs

PyTree = Any

DEFAULT_BATCH_SIZE = 64


def _stack_flat(directions: PyTree) -> jax.Array:
    """Pytree with a leading axis ``k`` -> ``(k, d)``."""
    return jax.vmap(lambda t: ravel_pytree(t)[0])(directions)


def _evaluate(fn, params, dirs_flat, coeffs, batch_size):
    """``fn(θ + coeffs[i] @ dirs)`` for every row of ``coeffs`` (``(N, k)``), in vmapped chunks."""
    flat, unravel = ravel_pytree(params)
    dirs_flat = dirs_flat.astype(flat.dtype)
    return jax.lax.map(
        lambda c: fn(unravel(flat + c.astype(flat.dtype) @ dirs_flat)), coeffs, batch_size=batch_size
    )


def stack_directions(*directions: PyTree) -> PyTree:
    """Stack pytree directions along a new leading axis (the layout every function here uses)."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *directions)


def interpolate(
    fn: Callable[[PyTree], Any],
    params_a: PyTree,
    params_b: PyTree,
    alphas: jax.Array,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Any:
    """``fn((1 − α) θ_a + α θ_b)`` for each ``α`` (Goodfellow, Vinyals & Saxe 2015): e.g. between
    initialization and solution, or two solutions (small- vs large-batch, Keskar et al. 2017)."""
    diff = ravel_pytree(params_b)[0] - ravel_pytree(params_a)[0]
    return _evaluate(fn, params_a, diff[None], jnp.asarray(alphas)[:, None], batch_size)


def slice_1d(
    fn: Callable[[PyTree], Any],
    params: PyTree,
    direction: PyTree,
    alphas: jax.Array,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Any:
    """``fn(θ + α d)`` for each ``α``; leaves of shape ``(len(alphas),)``."""
    d = ravel_pytree(direction)[0][None]
    return _evaluate(fn, params, d, jnp.asarray(alphas)[:, None], batch_size)


def slice_2d(
    fn: Callable[[PyTree], Any],
    params: PyTree,
    direction_x: PyTree,
    direction_y: PyTree,
    alphas: jax.Array,
    betas: jax.Array,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Any:
    """``fn(θ + α_i d_x + β_j d_y)`` on the grid; leaves of shape ``(len(alphas), len(betas))``
    (index ``[i, j]``: ``α_i`` along ``d_x``, ``β_j`` along ``d_y``)."""
    alphas, betas = jnp.asarray(alphas), jnp.asarray(betas)
    a, b = jnp.meshgrid(alphas, betas, indexing="ij")
    coeffs = jnp.stack([a.ravel(), b.ravel()], axis=1)
    dirs = _stack_flat(stack_directions(direction_x, direction_y))
    values = _evaluate(fn, params, dirs, coeffs, batch_size)
    return jax.tree_util.tree_map(lambda v: v.reshape(a.shape + v.shape[1:]), values)


# ------------------------------------------------------------------------------------------------
# Directions.


def random_direction(key: jax.Array, params: PyTree) -> PyTree:
    """A direction with i.i.d. standard Gaussian entries, shaped like ``params``."""
    flat, unravel = ravel_pytree(params)
    return unravel(jax.random.normal(key, flat.shape, flat.dtype))


def filter_normalize(direction: PyTree, params: PyTree, skip_1d: bool = True) -> PyTree:
    """Filter normalization (Li et al. 2018, §4): rescale each filter of ``direction`` to the norm
    of the corresponding filter of ``params``, ``d_f ← d_f ‖θ_f‖ / ‖d_f‖``.

    A filter is a slice ``w[..., j]`` along the last (output) axis of a leaf with ``ndim ≥ 2``: one
    output channel of a conv kernel ``(kh, kw, c_in, c_out)``, or the incoming weights of one
    unit of a dense kernel ``(in, out)``. Leaves with ``ndim ≤ 1`` (biases, normalization
    parameters) are set to zero if ``skip_1d`` (Li et al.'s ``ignore='biasbn'``), else to the
    parameter itself (their code's behaviour otherwise).
    """

    def one(d, w):
        if w.ndim <= 1:
            return jnp.zeros_like(d) if skip_1d else w.astype(d.dtype)
        axes = tuple(range(w.ndim - 1))
        w_norm = jnp.sqrt(jnp.sum(w**2, axis=axes, keepdims=True))
        d_norm = jnp.sqrt(jnp.sum(d**2, axis=axes, keepdims=True))
        return d * (w_norm / (d_norm + 1e-10)).astype(d.dtype)

    return jax.tree_util.tree_map(one, direction, params)


def filter_normalized_direction(key: jax.Array, params: PyTree, skip_1d: bool = True) -> PyTree:
    """A random Gaussian direction, filter-normalized against ``params`` (Li et al. 2018)."""
    return filter_normalize(random_direction(key, params), params, skip_1d)


def pca_directions(
    trajectory: PyTree, origin: PyTree | None = None, num_directions: int = 2
) -> tuple[PyTree, jax.Array]:
    """Top principal directions of an optimization trajectory (Li et al. 2018, §7).

    ``trajectory`` is a pytree of parameters with a leading time axis ``T``. PCA (mean-centered,
    as in Li et al.'s use of ``sklearn.decomposition.PCA``) of the differences ``θ_t − θ_origin``
    (``origin`` defaults to the last point). Returns ``(directions, explained_variance_ratio)``:
    unit-norm directions as a pytree with leading axis ``num_directions``, and the fraction of
    variance each explains — report it, a low fraction means the 2D plot misses most of the path.
    """
    flat = _stack_flat(trajectory)
    base = flat[-1] if origin is None else ravel_pytree(origin)[0]
    diffs = flat - base
    centered = diffs - jnp.mean(diffs, axis=0)
    _, s, vt = linalg.svd(centered, full_matrices=False)
    var = s**2
    unravel = ravel_pytree(jax.tree_util.tree_map(lambda x: x[0], trajectory))[1]
    return jax.vmap(unravel)(vt[:num_directions]), var[:num_directions] / jnp.sum(var)


def project_trajectory(trajectory: PyTree, origin: PyTree, directions: PyTree) -> jax.Array:
    """Coordinates ``c_t`` minimizing ``‖θ_t − θ_origin − Σ_k c_{t,k} d_k‖`` (least squares; the
    plain dot products when the directions are orthonormal, e.g. from :func:`pca_directions`).
    Returns ``(T, k)``, ready to overlay on a :func:`slice_2d` contour plot."""
    flat = _stack_flat(trajectory) - ravel_pytree(origin)[0]
    dirs = _stack_flat(directions)
    coords = linalg.lstsq(dirs.T, flat.T)
    return coords.T


def hessian_directions(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    *,
    key: jax.Array,
    num_directions: int = 2,
    num_iters: int = DEFAULT_NUM_ITERS,
) -> PyTree:
    """Top Hessian eigenvectors (unit norm, Lanczos) as a pytree with leading axis
    ``num_directions``: the directions of fastest loss increase to second order."""
    return hessian_eigenpairs(
        loss_fn, params, num_directions, key=key, num_iters=num_iters
    ).eigenvectors


def captured_fraction(displacement: PyTree, directions: PyTree) -> jax.Array:
    """``1 − ‖δ − Dᵀc*‖² / ‖δ‖²`` with ``c* = argmin_c ‖δ − Dᵀc‖``: the share of the squared length
    of ``δ`` (a pytree like the parameters, or a flat ``(d,)`` vector) lying in the span of the
    ``k`` directions ``D`` (leading axis ``k``, e.g. from :func:`pca_directions`).

    Quantifies Li et al.'s (2018, §7) observation: the displacement ``θ_0 − θ_T`` of an
    optimization path lies almost entirely in its PCA plane and hardly at all in a random one.
    """
    delta = ravel_pytree(displacement)[0]
    dirs = _stack_flat(directions)
    residual = delta - dirs.T @ linalg.lstsq(dirs.T, delta)
    return 1.0 - jnp.sum(residual**2) / jnp.sum(delta**2)
