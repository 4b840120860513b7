"""Spectral density of curvature operators by stochastic Lanczos quadrature (SLQ).

The empirical spectral density ``φ(t) = (1/d) Σ_i δ(t − λ_i)`` of a symmetric ``A`` satisfies
``∫ f dφ = (1/d) tr f(A) = E_v[vᵀ f(A) v]`` for ``v = z/√d`` with Rademacher ``z``. For one probe,
``m`` Lanczos steps started at ``v`` give the Gauss quadrature rule with nodes ``θ_j`` (Ritz values)
and weights ``τ_j = (e_1ᵀ s_j)²`` that integrates polynomials of degree ``≤ 2m−1`` against
``vᵀ f(A) v`` exactly (Golub & Meurant 2010). Averaging over probes and replacing each node by a
Gaussian of width ``σ`` gives the smoothed density

    φ_σ(t) = (1/P) Σ_p Σ_j τ_j^(p) N(t; θ_j^(p), σ²)

(Lin, Saad & Yang 2016; used for neural-network Hessians by Ghorbani, Krishnan & Xiao 2019 and
Papyan 2018). Its first moment is the average of ``vᵀAv`` over probes (an unbiased estimate of
``tr(A)/d``), its second the average of ``vᵀA²v`` (``≈ tr(A²)/d``) plus ``σ²``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from dl_course.measures.curvature.krylov import lanczos
from dl_course.measures.curvature.operators import Operator, flat_operator, hessian_operator
from dl_course.measures.curvature.products import DEFAULT_HVP_METHOD

PyTree = Any

# The grid extends this many σ beyond the extreme nodes: the Gaussian mass left outside is
# erfc(8/√2) ≈ 1e-15, so normalizing on the grid changes nothing at double precision.
_GRID_PAD_SIGMAS = 8.0


class SLQResult(NamedTuple):
    """Quadrature rules of SLQ: ``nodes`` and ``weights`` of shape ``(num_probes, m)``; each row
    of ``weights`` sums to 1."""

    nodes: jax.Array
    weights: jax.Array


def slq(
    matvec: Callable[[jax.Array], jax.Array],
    dim: int,
    dtype: Any,
    *,
    key: jax.Array,
    num_probes: int,
    num_iters: int,
    batch_size: int | None = None,
) -> SLQResult:
    """Stochastic Lanczos quadrature: one ``num_iters``-step Lanczos run (full
    reorthogonalization) per Rademacher probe; probes evaluated with ``lax.map(batch_size=...)``.
    Costs ``num_probes · min(num_iters, dim)`` matvecs."""

    def one_probe(i):
        g = jax.random.normal(jax.random.fold_in(key, i), (2, dim), dtype)
        z = jnp.where(g[0] >= 0, 1.0, -1.0).astype(dtype)  # Rademacher: signs of a Gaussian
        res = lanczos(matvec, z, num_iters, restart=g[1])
        return res.ritz_values, res.ritz_coeffs[0, :] ** 2

    nodes, weights = jax.lax.map(one_probe, jnp.arange(num_probes), batch_size=batch_size)
    return SLQResult(nodes, weights)


def gaussian_density(rule: SLQResult, grid: jax.Array, sigma: jax.Array) -> jax.Array:
    """``φ_σ`` on ``grid`` from SLQ quadrature rules (module docstring), normalized so that its
    trapezoidal integral over ``grid`` is exactly 1."""
    z = (grid[:, None, None] - rule.nodes[None]) / sigma
    kernel = jnp.exp(-0.5 * z**2) / (sigma * jnp.sqrt(2.0 * jnp.pi))
    density = jnp.sum(kernel * rule.weights[None], axis=(1, 2)) / rule.nodes.shape[0]
    return density / jnp.trapezoid(density, grid)


def operator_spectral_density(
    operator: Operator,
    params: PyTree,
    *,
    key: jax.Array,
    num_probes: int = 10,
    num_iters: int = 60,
    num_points: int = 1024,
    sigma: float | None = None,
    sigma_rel: float = 0.01,
    grid: jax.Array | None = None,
    batch_size: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """SLQ spectral density ``(grid, density)`` of a symmetric pytree operator.

    Args:
      num_probes, num_iters: SLQ probes and Lanczos steps per probe.
      num_points: size of the default grid, which spans the extreme Ritz values ± 8σ.
      sigma: Gaussian width; default ``sigma_rel × (max node − min node)``.
      grid: an explicit grid (e.g. shared by several runs); the density is normalized on it.
      batch_size: probes evaluated at once (vmapped) inside ``lax.map``.

    Returns ``density ≥ 0`` with trapezoidal integral 1 over ``grid``.
    """
    matvec, flat, _ = flat_operator(operator, params)
    rule = slq(
        matvec, flat.shape[0], flat.dtype, key=key, num_probes=num_probes, num_iters=num_iters,
        batch_size=batch_size,
    )
    lo, hi = jnp.min(rule.nodes), jnp.max(rule.nodes)
    width = jnp.maximum(hi - lo, jnp.finfo(flat.dtype).eps * jnp.maximum(jnp.abs(hi), 1.0))
    sigma = sigma_rel * width if sigma is None else jnp.asarray(sigma, flat.dtype)
    if grid is None:
        pad = _GRID_PAD_SIGMAS * sigma
        grid = jnp.linspace(lo - pad, hi + pad, num_points, dtype=flat.dtype)
    return grid, gaussian_density(rule, grid, sigma)


def spectral_density(
    loss_fn: Callable[[PyTree], jax.Array], params: PyTree, *, hvp_method: str = DEFAULT_HVP_METHOD, **kwargs
) -> tuple[jax.Array, jax.Array]:
    """Hessian spectral density ``(grid, density)`` by SLQ, integrating to 1 over ``grid``
    (Ghorbani et al. 2019). The keyword arguments (``key``, ``num_probes``, ``num_iters``, ...) are
    those of :func:`operator_spectral_density`; ``hvp_method``: see
    :func:`~dl_course.measures.curvature.operators.hessian_operator`."""
    return operator_spectral_density(hessian_operator(loss_fn, params, hvp_method), params, **kwargs)
