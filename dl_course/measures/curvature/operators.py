"""Curvature operators over parameter pytrees, and their flat-vector form.

An ``Operator`` is a symmetric linear map ``v -> A v`` on pytrees shaped like ``params`` (the
Hessian, Gauss–Newton, empirical Fisher, a preconditioned or a per-layer block of the Hessian).
The Krylov, trace and density routines work on flat vectors ``(d,)``; :func:`flat_operator`
bridges the two with ``jax.flatten_util.ravel_pytree``, and :func:`on_flat` applies a flat-vector
estimator ``estimator(matvec, dim, dtype, ...)`` to a pytree operator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from jax.flatten_util import ravel_pytree

from dl_course.measures.curvature.products import DEFAULT_HVP_METHOD, hessian_vector_operator

PyTree = Any
Operator = Callable[[PyTree], PyTree]


def flat_operator(operator: Operator, params: PyTree) -> tuple[Callable, jax.Array, Callable]:
    """Turn a pytree operator into ``(matvec on flat vectors, flat params, unravel)``."""
    flat, unravel = ravel_pytree(params)

    def matvec(x):
        return ravel_pytree(operator(unravel(x)))[0].astype(flat.dtype)

    return matvec, flat, unravel


def on_flat(estimator: Callable[..., Any], operator: Operator, params: PyTree, **kwargs) -> Any:
    """``estimator(matvec, d, dtype, **kwargs)`` on the flattened ``operator`` at ``params``: the
    pytree form of a flat-vector estimator (trace, diagonal, Frobenius norm, SLQ quadrature)."""
    matvec, flat, _ = flat_operator(operator, params)
    return estimator(matvec, flat.shape[0], flat.dtype, **kwargs)


def pytree_form(estimator: Callable[..., Any], name: str, summary: str) -> Callable[..., Any]:
    """The pytree-operator form ``name(operator, params, **kwargs)`` of a flat-vector estimator
    ``estimator(matvec, d, dtype, **kwargs)`` (:func:`on_flat`), documented by ``summary``."""

    def form(operator: Operator, params: PyTree, **kwargs):
        return on_flat(estimator, operator, params, **kwargs)

    form.__name__ = form.__qualname__ = name
    form.__doc__ = (f"{summary} of a symmetric pytree operator at ``params``: :func:`{estimator.__name__}` on its "
                    "flattened form, with the same keyword arguments.")
    return form


def hessian_operator(
    loss_fn: Callable[[PyTree], jax.Array], params: PyTree, method: str = DEFAULT_HVP_METHOD
) -> Operator:
    """``v -> ∇²L(θ) v`` as a pytree operator. ``method``: ``"forward_over_reverse"`` (default; a
    JVP of the gradient per product) or ``"linearize"`` (the gradient linearized once at ``θ``,
    each product the tangent part only, the linearization's residuals held in memory); equal in
    time and memory inside jitted loops (see
    :func:`~dl_course.measures.curvature.products.hessian_vector_operator`)."""
    return hessian_vector_operator(loss_fn, params, method)
