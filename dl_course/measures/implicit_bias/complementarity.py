"""The small semidefinite complementarity problem of the central flow, solved inside the program.

Central flows (Cohen, Damian, Talwalkar, Kolter & Lee 2025, ICLR, "Understanding Optimization in
Deep Learning with Central Flows", §3) need, at every instant, the ``k × k`` matrix ``Σ`` solving
the semidefinite complementarity problem (SDCP)

    Σ ⪰ 0,      G(Σ) = A + 𝔅[Σ] ⪰ 0,      ⟨Σ, G(Σ)⟩ = 0,

with ``A`` symmetric and ``𝔅`` a positive semidefinite linear map of symmetric matrices. These are
the KKT conditions of the convex quadratic program ``min_{Σ ⪰ 0} ½⟨Σ, 𝔅[Σ]⟩ + ⟨A, Σ⟩``
(``G`` is the gradient and the multiplier), so a solution exists and ``𝔅[Σ]`` is unique. The
authors solve it on the host with cvxpy, which cannot run under ``jax.vmap``; here ``k ≤ 3`` and:

* ``k = 1``: the closed form ``σ² = max(0, −a/b)``;
* ``k > 1``: accelerated projected gradient (FISTA, Beck & Teboulle 2009) with adaptive restart
  (O'Donoghue & Candès 2015), a fixed number of iterations, step ``1/‖𝔅‖``, the projection onto
  the PSD cone by a Jacobi eigendecomposition (:func:`dl_course.linalg.jacobi_eigh`, XLA
  operations: no LAPACK call, so no CPU deadlock under ``vmap``), started from the decoupled
  closed forms on the diagonal.

Symmetric matrices are handled as vectors of their upper triangle with off-diagonals scaled by
``√2`` (:func:`sym_to_vec`), an isometry for the Frobenius inner product, so ``𝔅`` is a
``p × p`` PSD matrix, ``p = k(k+1)/2``. A boolean ``mask`` restricts ``Σ`` to a sub-block (the
directions whose eigenvalue is above the tracking threshold); the conditions then hold on it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import linalg


def _triu(k: int):
    i, j = np.triu_indices(k)
    return i, j, np.where(i == j, 1.0, np.sqrt(2.0))


def sym_to_vec(m: jax.Array) -> jax.Array:
    """``(k, k)`` symmetric → ``(k(k+1)/2,)``: the upper triangle row by row, off-diagonals × ``√2``
    (so ``⟨X, Y⟩_F = sym_to_vec(X) · sym_to_vec(Y)``)."""
    i, j, s = _triu(m.shape[-1])
    return m[..., i, j] * s.astype(m.dtype)


def vec_to_sym(v: jax.Array, k: int) -> jax.Array:
    """Inverse of :func:`sym_to_vec` for ``(k(k+1)/2,)`` vectors."""
    i, j, s = _triu(k)
    vals = v / s.astype(v.dtype)
    return jnp.zeros((k, k), v.dtype).at[i, j].set(vals).at[j, i].set(vals)


def project_psd(m: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Frobenius projection of the symmetric part of ``m`` onto the PSD matrices supported on the
    rows/columns where ``mask`` is true (zero elsewhere): clip the eigenvalues of the masked
    block at 0."""
    m = 0.5 * (m + m.T)
    if mask is not None:
        keep = mask.astype(m.dtype)
        m = m * keep[:, None] * keep[None, :]
    if m.shape[0] == 1:
        return jnp.maximum(m, 0.0)
    vals, vecs = linalg.jacobi_eigh(m)
    return (vecs * jnp.maximum(vals, 0.0)) @ vecs.T


def solve_sdcp(a: jax.Array, b: jax.Array, mask: jax.Array | None = None, *, num_iters: int = 200) -> jax.Array:
    """``Σ`` solving ``Σ ⪰ 0``, ``G = A + 𝔅[Σ] ⪰ 0``, ``⟨Σ, G⟩ = 0`` (module docstring).

    Args:
      a: ``(k, k)`` symmetric ``A``.
      b: ``(p, p)`` PSD matrix of ``𝔅`` in the :func:`sym_to_vec` basis, ``p = k(k+1)/2``.
      mask: ``(k,)`` bool, the rows/columns ``Σ`` may use (default all); on the others ``Σ = 0``
        and ``G`` is unconstrained.
      num_iters: FISTA iterations for ``k > 1`` (static). ``k = 1`` is the exact closed form.

    Returns ``Σ`` ``(k, k)``. Check :func:`sdcp_residuals` for the accuracy reached.
    """
    k = a.shape[0]
    dtype = a.dtype
    tiny = jnp.finfo(dtype).tiny
    if mask is None:
        mask = jnp.ones((k,), bool)
    if k == 1:
        sigma = jnp.where(b[0, 0] > tiny, jnp.maximum(-a[0, 0] / jnp.maximum(b[0, 0], tiny), 0.0), 0.0)
        return jnp.where(mask[0], sigma, 0.0).reshape(1, 1)
    av = sym_to_vec(a)
    i, j, _ = _triu(k)
    diag = i == j
    # Start: each direction alone (σ_ii² = max(0, −a_ii / b_ii)), no coupling.
    bdiag = jnp.diagonal(b)
    x0 = jnp.where(diag & (bdiag > tiny), jnp.maximum(-av / jnp.maximum(bdiag, tiny), 0.0), 0.0)
    x0 = sym_to_vec(project_psd(vec_to_sym(x0, k), mask))
    lip = jnp.maximum(linalg.jacobi_eigh(0.5 * (b + b.T))[0][-1], tiny)

    def prox(y):
        return sym_to_vec(project_psd(vec_to_sym(y - (av + b @ y) / lip, k), mask))

    def body(_, carry):
        x, y, t = carry
        x_new = prox(y)
        restart = jnp.vdot(y - x_new, x_new - x) > 0  # the momentum points uphill: reset it
        t_new = jnp.where(restart, 1.0, 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t)))
        beta = jnp.where(restart, 0.0, (t - 1.0) / t_new)
        return x_new, x_new + beta * (x_new - x), t_new

    x, _, _ = jax.lax.fori_loop(0, num_iters, body, (x0, x0, jnp.ones((), dtype)))
    return vec_to_sym(x, k)


def sdcp_residuals(a: jax.Array, b: jax.Array, sigma: jax.Array, mask: jax.Array | None = None):
    """``(complementarity, infeasibility)`` of a candidate ``Σ``: ``|⟨Σ, G⟩|`` and
    ``max(0, −λmin(G))`` on the masked block, with ``G = A + 𝔅[Σ]`` (both 0 at the solution;
    ``Σ ⪰ 0`` holds by construction of :func:`solve_sdcp`)."""
    k = a.shape[0]
    g = a + vec_to_sym(b @ sym_to_vec(sigma), k)
    if mask is None:
        mask = jnp.ones((k,), bool)
    big = jnp.max(jnp.abs(g)) + 1.0
    g_active = jnp.where(mask[:, None] & mask[None, :], g, jnp.diag(jnp.where(mask, 0.0, big)))
    g_active = 0.5 * (g_active + g_active.T)
    lmin = g_active[0, 0] if k == 1 else linalg.jacobi_eigh(g_active)[0][0]
    return jnp.abs(jnp.vdot(sigma, g)), jnp.maximum(-lmin, 0.0)
