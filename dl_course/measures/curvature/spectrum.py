"""Extreme eigenpairs of curvature operators over parameter pytrees (Lanczos, power iteration).

Front-ends of :mod:`dl_course.measures.curvature.krylov` that work on ``loss_fn(params) -> scalar`` (the
Hessian, via :func:`~dl_course.measures.curvature.products.hvp`) or on any symmetric ``operator(v) -> Hv``
over pytrees (GGN, Fisher, a preconditioned Hessian). Parameters are flattened with
``jax.flatten_util.ravel_pytree``; eigenvectors come back as pytrees with a leading axis ``k``.
Everything runs a fixed number of iterations, so ``jax.vmap`` over a leading run axis of
``params`` (and ``key``) gives the spectra of all runs of a sweep in one call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dl_course.measures.curvature.krylov import extreme_ritz_pairs, lanczos, power_iteration
from dl_course.measures.curvature.operators import Operator, flat_operator, hessian_operator
from dl_course.measures.curvature.products import DEFAULT_HVP_METHOD

PyTree = Any

DEFAULT_NUM_ITERS = 30


class EigenResult(NamedTuple):
    """Eigenpairs with a reliability indicator.

    Attributes:
      eigenvalues: ``(k,)``; descending for the top of the spectrum, ascending for the bottom.
      eigenvectors: pytree like ``params`` with a leading axis ``k``; unit norm when flattened.
      residuals: ``(k,)`` Ritz residuals ``‖A u − λ u‖``: an eigenvalue of ``A`` lies within
        ``residual`` of each reported value (``residual / |λ|`` bounds the relative distance).
    """

    eigenvalues: jax.Array
    eigenvectors: PyTree
    residuals: jax.Array


def _unravel_rows(unravel: Callable, rows: jax.Array) -> PyTree:
    return jax.vmap(unravel)(rows)


def _lanczos_on(operator, params, key, num_iters, v0):
    """Lanczos on the flattened operator from ``v0`` (a pytree like params or a flat vector: both
    ravel to ``(d,)``), or from a Gaussian vector if ``v0`` is ``None`` or zero (so a warm start
    can be switched off inside ``vmap``). One random draw gives start and restart vectors."""
    matvec, flat, unravel = flat_operator(operator, params)
    z = jax.random.normal(key, (2,) + flat.shape, flat.dtype)
    start = z[0]
    if v0 is not None:
        v0 = ravel_pytree(v0)[0].astype(flat.dtype)
        start = jnp.where(jnp.linalg.norm(v0) > 0, v0, start)
    return lanczos(matvec, start, num_iters, restart=z[1]), unravel


def operator_eigenpairs(
    operator: Operator,
    params: PyTree,
    k: int = 1,
    *,
    key: jax.Array,
    num_iters: int = DEFAULT_NUM_ITERS,
    which: str = "top",
    v0: PyTree | None = None,
) -> EigenResult:
    """The ``k`` largest (``which="top"``) or smallest (``"bottom"``) eigenpairs of a symmetric
    pytree operator, by Lanczos with full reorthogonalization (see :func:`lanczos`).

    ``num_iters`` matvecs are spent (clipped to the dimension); check ``residuals`` to see whether
    that was enough. ``v0`` (pytree like ``params`` or a flat vector) warm-starts the iteration,
    e.g. from the previous top eigenvector during training; if it is ``None`` or zero a Gaussian
    vector from ``key`` is used.
    """
    result, unravel = _lanczos_on(operator, params, key, num_iters, v0)
    values, vectors, residuals = extreme_ritz_pairs(result, k, which)
    return EigenResult(values, _unravel_rows(unravel, vectors), residuals)


def hessian_eigenpairs(
    loss_fn: Callable[[PyTree], jax.Array], params: PyTree, k: int = 1, *, hvp_method: str = DEFAULT_HVP_METHOD,
    **kwargs,
) -> EigenResult:
    """Extreme eigenpairs of the Hessian ``∇²L(θ)`` with Ritz residuals (Lanczos): the keyword
    arguments (``key``, ``num_iters``, ``which``, ``v0``) are those of :func:`operator_eigenpairs`;
    ``which="top"``: ``λ_1 ≥ … ≥ λ_k``; ``"bottom"``: ascending. ``hvp_method``: see
    :func:`hessian_operator`."""
    return operator_eigenpairs(hessian_operator(loss_fn, params, hvp_method), params, k, **kwargs)


def top_eigenvalues(
    loss_fn: Callable[[PyTree], jax.Array], params: PyTree, k: int = 1, **kwargs
) -> tuple[jax.Array, PyTree]:
    """Top-``k`` Hessian eigenvalues (descending) and eigenvectors (pytree, leading axis ``k``).

    Lanczos with full reorthogonalization, ``num_iters`` Hessian-vector products; the keyword
    arguments (``key``, ``num_iters``, ``hvp_method``) are those of :func:`hessian_eigenpairs`,
    which also gives the Ritz residuals (reliability).
    """
    res = hessian_eigenpairs(loss_fn, params, k, which="top", **kwargs)
    return res.eigenvalues, res.eigenvectors


def bottom_eigenvalues(
    loss_fn: Callable[[PyTree], jax.Array], params: PyTree, k: int = 1, **kwargs
) -> tuple[jax.Array, PyTree]:
    """Bottom-``k`` Hessian eigenvalues (ascending: most negative first) and eigenvectors.

    The smallest eigenvalues of a trained network's Hessian are clustered near 0, so they
    converge more slowly than the top ones; check residuals via :func:`hessian_eigenpairs` (whose
    keyword arguments these are).
    """
    res = hessian_eigenpairs(loss_fn, params, k, which="bottom", **kwargs)
    return res.eigenvalues, res.eigenvectors


def operator_power_iteration(
    operator: Operator,
    params: PyTree,
    k: int = 1,
    *,
    key: jax.Array,
    num_iters: int = 100,
    v0: PyTree | None = None,
) -> EigenResult:
    """The ``k`` largest-magnitude eigenpairs by power iteration with deflation (for comparison
    with Lanczos; see :func:`~dl_course.measures.curvature.krylov.power_iteration`). ``v0``: a pytree
    with leading axis ``k`` (warm start) or ``None`` for Gaussian starts from ``key``."""
    matvec, flat, unravel = flat_operator(operator, params)
    if v0 is None:
        starts = jax.random.normal(key, (k,) + flat.shape, flat.dtype)
    else:
        starts = jax.vmap(lambda t: ravel_pytree(t)[0])(v0).astype(flat.dtype)
    res = power_iteration(matvec, starts, num_iters)
    return EigenResult(res.eigenvalues, _unravel_rows(unravel, res.eigenvectors), res.residuals)
