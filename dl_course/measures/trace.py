"""Hutchinson's stochastic trace estimator for curvature operators over parameter pytrees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dl_course.measures.curvature import DEFAULT_HVP_METHOD
from dl_course.measures.spectrum import Operator, flat_operator, hessian_operator

PyTree = Any


def hutchinson_trace(
    matvec: Callable[[jax.Array], jax.Array],
    dim: int,
    dtype: Any,
    *,
    key: jax.Array,
    num_samples: int,
    batch_size: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Hutchinson (1989) estimate of ``tr(A)`` with Rademacher probes, and its standard error.

    ``tr(A) = E[zᵀ A z]`` for ``z`` with i.i.d. ±1 entries; the estimate is the mean of
    ``num_samples`` quadratic forms and the standard error is their sample standard deviation
    (``ddof=1``) over ``√num_samples`` (``nan`` for one sample). Rademacher probes minimize the
    variance among i.i.d. probes: ``Var[zᵀAz] = 2 Σ_{i≠j} A_ij²`` (Avron & Toledo 2011).
    Probes are generated one at a time from ``fold_in(key, i)`` and evaluated with
    ``lax.map(batch_size=...)`` (``batch_size`` matvecs vmapped at once; default 1), so memory
    stays at a few vectors.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")

    def quad(i):
        z = jax.random.rademacher(jax.random.fold_in(key, i), (dim,), dtype)
        return jnp.vdot(z, matvec(z))

    samples = jax.lax.map(quad, jnp.arange(num_samples), batch_size=batch_size)
    return jnp.mean(samples), jnp.std(samples, ddof=1) / jnp.sqrt(num_samples)


def operator_trace(
    operator: Operator,
    params: PyTree,
    *,
    key: jax.Array,
    num_samples: int = 100,
    batch_size: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Hutchinson trace ``(estimate, stderr)`` of a symmetric pytree operator (see
    :func:`hutchinson_trace`)."""
    matvec, flat, _ = flat_operator(operator, params)
    return hutchinson_trace(
        matvec, flat.shape[0], flat.dtype, key=key, num_samples=num_samples, batch_size=batch_size
    )


def hessian_trace(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    *,
    key: jax.Array,
    num_samples: int = 100,
    batch_size: int | None = None,
    hvp_method: str = DEFAULT_HVP_METHOD,
) -> tuple[jax.Array, jax.Array]:
    """Hutchinson estimate of ``tr ∇²L(θ)`` and its standard error (Rademacher probes, one HVP
    each). Used as a flatness measure by e.g. Yao et al. (2020, PyHessian) and Jiang et al. (2020,
    "Fantastic generalization measures"). ``hvp_method``: see
    :func:`~dl_course.measures.spectrum.hessian_operator`."""
    return operator_trace(
        hessian_operator(loss_fn, params, hvp_method), params, key=key, num_samples=num_samples,
        batch_size=batch_size,
    )
