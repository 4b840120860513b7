"""Lanczos with full reorthogonalization, and power iteration with deflation, on flat vectors.

Both act on a symmetric linear operator given as ``matvec: (d,) -> (d,)`` and run a *fixed*
number of iterations inside ``lax.scan``, so they are jit-able and vmappable (e.g. over the
leading run axis of a sweep). The pytree/loss-level front-ends live in
:mod:`dl_course.measures.curvature.spectrum`.

Reliability: every Ritz pair ``(θ, y)`` comes with its residual ``r = ‖A y − θ y‖``. For a
symmetric ``A`` some eigenvalue lies in ``[θ − r, θ + r]``, and ``|θ − λ| ≤ r² / gap`` once the
gap to the rest of the spectrum is known (Kato–Temple; Parlett 1998, *The Symmetric Eigenvalue
Problem*, ch. 4). ``r / |θ| ≤ tol`` is therefore a stopping rule that *certifies* relative accuracy
``tol`` — "the estimate stopped changing" does not. (The largest Ritz value never exceeds λmax;
the certified eigenvalue is λmax unless the start vector was nearly orthogonal to its
eigenvector, which a random start rules out with high probability.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from dl_course import linalg

Matvec = Callable[[jax.Array], jax.Array]


class LanczosResult(NamedTuple):
    """Output of :func:`lanczos` after ``m`` iterations (``m = min(num_iters, d)``).

    Attributes:
      ritz_values: ``(m,)`` eigenvalues of the tridiagonal ``T``, ascending.
      ritz_coeffs: ``(m, m)`` eigenvectors of ``T`` (columns, same order); the Ritz vector ``i``
        is ``basisᵀ @ ritz_coeffs[:, i]`` (see :func:`ritz_vectors`).
      residuals: ``(m,)`` ``‖A y_i − θ_i y_i‖ = |β_{m−1}| · |ritz_coeffs[m−1, i]|``, floored at the
        rounding level ``eps · max|θ|``.
      basis: ``(m, d)`` orthonormal Lanczos vectors (rows).
      alphas: ``(m,)`` diagonal of ``T``.
      betas: ``(m,)`` ``betas[j]`` couples ``v_j`` and ``v_{j+1}``; ``betas[m−1]`` is the norm of
        the final residual vector (zero when the Krylov space became invariant).
    """

    ritz_values: jax.Array
    ritz_coeffs: jax.Array
    residuals: jax.Array
    basis: jax.Array
    alphas: jax.Array
    betas: jax.Array


def _orthogonalize(w: jax.Array, basis: jax.Array) -> jax.Array:
    """Classical Gram–Schmidt against the rows of ``basis``, applied twice ("twice is enough",
    Giraud et al. 2005): the result is orthogonal to working precision. Unfilled rows are zero."""
    w = w - basis.T @ (basis @ w)
    return w - basis.T @ (basis @ w)


def _krylov_setup(name: str, budget: int, start: jax.Array, restart: jax.Array | None):
    """``(m, dtype, eps, restart)``: the Krylov dimension ``m = min(budget, d)`` (at least 1), the
    start's dtype and machine epsilon, and the restart vector (default a fixed Gaussian vector)."""
    d = start.shape[-1]
    m = int(min(budget, d))
    if m < 1:
        raise ValueError(f"{name} must be >= 1, got {budget}")
    dtype = start.dtype
    if restart is None:
        restart = jax.random.normal(jax.random.key(0), (d,), dtype)
    return m, dtype, jnp.finfo(dtype).eps, restart


def lanczos(
    matvec: Matvec, v0: jax.Array, num_iters: int, *, restart: jax.Array | None = None
) -> LanczosResult:
    """Symmetric Lanczos with full reorthogonalization for ``m = min(num_iters, d)`` steps.

    Builds an orthonormal basis ``V`` of the Krylov space ``K_m(A, v0)`` and the tridiagonal
    ``T = Vᵀ A V`` (Lanczos 1950; Golub & Van Loan, *Matrix Computations*, §10.1). Each step costs
    one ``matvec`` plus ``O(m d)`` for re-orthogonalizing against all previous vectors, which
    removes the spurious copies of converged eigenvalues that plain Lanczos produces in floating
    point (Paige 1971). The extreme Ritz values converge first, at both ends of the spectrum.

    If the Krylov space becomes invariant at step ``j`` (``β_j`` at rounding level: a low-rank
    ``A``, a start vector in an invariant subspace, or ``m = d``), ``β_j`` is set to 0 and the
    iteration continues from ``roll(restart, j)`` orthogonalized against the basis, so ``T``
    stays exactly block-diagonal and every block's Ritz values are eigenvalues of ``A``.

    Args:
      matvec: ``x -> A x`` for a symmetric ``A``; flat vectors of shape ``(d,)``.
      v0: starting vector ``(d,)`` (normalized here); a warm start from a previous eigenvector
        makes the corresponding eigenpair converge in a few steps.
      num_iters: static number of iterations (= matvecs); clipped to ``d``.
      restart: a random ``(d,)`` vector whose rolls seed restarts after a breakdown (a generic
        vector; its cyclic shifts are linearly independent almost surely). Default: a fixed
        Gaussian vector.
    """
    d = v0.shape[0]
    m, dtype, eps, restart = _krylov_setup("num_iters", num_iters, v0, restart)
    basis = jnp.zeros((m, d), dtype).at[0].set(v0 / jnp.linalg.norm(v0))

    def step(carry, j):
        basis, anorm = carry
        v = basis[j]
        av = matvec(v)
        alpha = jnp.vdot(v, av)
        w = _orthogonalize(av, basis)
        beta = jnp.linalg.norm(w)
        anorm = jnp.maximum(anorm, jnp.linalg.norm(av))
        broke = beta <= 10.0 * eps * anorm
        r = _orthogonalize(jnp.roll(restart, j), basis)
        r_norm = jnp.linalg.norm(r)
        v_next = jnp.where(
            broke, r / jnp.where(r_norm > 0, r_norm, 1.0), w / jnp.where(broke, 1.0, beta)
        )
        beta = jnp.where(broke, jnp.zeros_like(beta), beta)
        basis = basis.at[j + 1].set(v_next, mode="drop")  # index m is out of range: dropped
        return (basis, anorm), (alpha, beta)

    (basis, _), (alphas, betas) = jax.lax.scan(
        step, (basis, jnp.zeros((), dtype)), jnp.arange(m)
    )
    # The m x m eigenproblem is solved inside the program (Jacobi on CPU): no host round trip.
    ritz_values, ritz_coeffs = linalg.eigh_tridiagonal(alphas, betas[:-1])
    # The formula is exact in exact arithmetic; in floating point a Ritz pair is accurate only to
    # the rounding level, so the reported residual never goes below eps·max|θ|.
    floor = eps * jnp.max(jnp.abs(ritz_values))
    residuals = jnp.maximum(jnp.abs(betas[-1] * ritz_coeffs[-1, :]), floor)
    return LanczosResult(ritz_values, ritz_coeffs, residuals, basis, alphas, betas)


def ritz_vectors(result: LanczosResult, indices: jax.Array) -> jax.Array:  # or a RitzResult
    """Ritz vectors ``Vᵀ s_i`` for the given indices into ``result.ritz_values``: ``(len, d)``."""
    return (result.basis.T @ result.ritz_coeffs[:, indices]).T


def extreme_ritz_pairs(
    result: LanczosResult, k: int, which: str = "top"
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The ``k`` largest (``which="top"``, descending) or smallest (``"bottom"``, ascending)
    Ritz pairs of a :class:`LanczosResult` or :class:`RitzResult`: ``(values (k,), vectors (k, d),
    residuals (k,))``."""
    m = result.ritz_values.shape[0]
    if not 1 <= k <= m:
        raise ValueError(f"k must be in [1, {m}] (the number of Lanczos iterations), got {k}")
    if which == "top":
        idx = jnp.arange(m - 1, m - 1 - k, -1)
    elif which == "bottom":
        idx = jnp.arange(k)
    else:
        raise ValueError(f"which must be 'top' or 'bottom', got {which!r}")
    return result.ritz_values[idx], ritz_vectors(result, idx), result.residuals[idx]


class RitzResult(NamedTuple):
    """Output of :func:`block_krylov`: Rayleigh–Ritz on the ``m`` basis vectors whose products are
    known (``m`` = the number of matvecs).

    Attributes:
      ritz_values: ``(m,)`` eigenvalues of ``T = V A Vᵀ``, ascending.
      ritz_coeffs: ``(m, m)`` eigenvectors of ``T`` (columns); Ritz vector ``i`` is
        ``basisᵀ @ ritz_coeffs[:, i]`` (:func:`ritz_vectors` works on this result too).
      residuals: ``(m,)`` ``‖A y_i − θ_i y_i‖`` computed from the stored products (exact up to
        rounding), floored at ``eps · max|θ|``.
      basis: ``(m, d)`` orthonormal rows.
    """

    ritz_values: jax.Array
    ritz_coeffs: jax.Array
    residuals: jax.Array
    basis: jax.Array


def block_krylov(
    matvec: Matvec,
    start: jax.Array,
    num_matvecs: int,
    *,
    restart: jax.Array | None = None,
) -> RitzResult:
    """Rayleigh–Ritz on the block Krylov space ``span{S, AS, A²S, …}`` of a start block
    ``S = [s_1; …; s_b]``, from ``m`` matvecs.

    The rows of ``start`` (zero rows, or rows in the span of earlier ones, are skipped) are
    orthonormalized into the first basis vectors; then matvec ``j = 0 … m−1`` is applied to basis
    vector ``j`` and the product, orthogonalized against the whole basis (twice), is appended.
    The space has depth ``≈ m / b`` (block Lanczos in Rayleigh–Ritz form: Golub & Underwood 1977;
    Saad, *Numerical Methods for Large Eigenvalue Problems* 2011, §6.7). The ``m`` basis vectors
    whose products are known span it, and ``T = V (A V)ᵀ`` is its exact Rayleigh-quotient matrix
    (dense; solved by :func:`dl_course.linalg.jacobi_eigh`); residuals come from the stored
    products. With one start vector this is Lanczos with full reorthogonalization
    (:func:`lanczos`: the same Ritz values in exact arithmetic). Started from the top Ritz vectors of a
    nearby matrix (the previous
    evaluation during training), the space contains the old invariant subspace: eigenvalues that
    cross or cluster inside it are resolved, where a single warm-start vector weighs them by its
    components. Cost ``m`` matvecs and ``O(m² d)`` flops; memory ``(2m + b + 1) d``.

    Args:
      matvec: ``x -> A x`` for a symmetric ``A`` on ``(d,)`` vectors.
      start: ``(b, d)`` start block (all zero: the ``restart`` vector starts the space, i.e. a cold
        start: plain Lanczos).
      num_matvecs: static ``m``, clipped to ``d``.
      restart: a generic ``(d,)`` vector (the cold start) whose rolls replace a vector lost to
        breakdown (an invariant space); default a fixed Gaussian vector.
    """
    b, d = start.shape
    m, dtype, eps, restart = _krylov_setup("num_matvecs", num_matvecs, start, restart)
    scale = jnp.maximum(jnp.max(jnp.linalg.norm(start, axis=1)), jnp.finfo(dtype).tiny)

    def append(carry, w, tol):
        """Orthogonalize ``w`` against the basis; append it if it is not (numerically) inside."""
        basis, count = carry
        w = _orthogonalize(w, basis)
        norm = jnp.linalg.norm(w)
        keep = norm > tol
        row = jnp.where(keep, w / jnp.where(keep, norm, 1.0), 0.0)
        basis = jax.lax.dynamic_update_slice_in_dim(basis, row[None], count, 0)
        return (basis, count + keep.astype(count.dtype)), keep

    carry = (jnp.zeros((m + b + 1, d), dtype), jnp.zeros((), jnp.int32))
    for i in range(b):
        carry, _ = append(carry, start[i], 10.0 * eps * scale)
    carry, _ = append(carry, jnp.where(carry[1] == 0, restart, 0.0), 0.0)

    def step(state, j):
        carry, anorm = state
        av = matvec(carry[0][j])
        anorm = jnp.maximum(anorm, jnp.linalg.norm(av))
        carry, kept = append(carry, av, 10.0 * eps * anorm)
        # Breakdown (the space is invariant): continue from a roll of the restart vector.
        carry, _ = append(carry, jnp.where(kept, 0.0, jnp.roll(restart, j + 1)), 0.0)
        return (carry, anorm), av

    (carry, _), products = jax.lax.scan(step, (carry, jnp.zeros((), dtype)), jnp.arange(m))
    basis = carry[0][:m]  # row i: the product of basis[i] is products[i]
    t = basis @ products.T
    ritz_values, ritz_coeffs = linalg.jacobi_eigh(0.5 * (t + t.T))
    resid = ritz_coeffs.T @ products - ritz_values[:, None] * (ritz_coeffs.T @ basis)
    floor = eps * jnp.max(jnp.abs(ritz_values))
    residuals = jnp.maximum(jnp.linalg.norm(resid, axis=1), floor)
    return RitzResult(ritz_values, ritz_coeffs, residuals, basis)


class PowerIterationResult(NamedTuple):
    """Output of :func:`power_iteration` for ``k`` deflated eigenpairs.

    Attributes:
      eigenvalues: ``(k,)`` Rayleigh quotients, in the order found (decreasing ``|λ|``).
      eigenvectors: ``(k, d)`` unit vectors.
      residuals: ``(k,)`` ``‖A u − λ u‖`` (for the undeflated ``A``).
      history: ``(k, num_iters)`` Rayleigh quotient after each matvec (for convergence studies).
      residual_history: ``(k, num_iters)`` residual norm (of the deflated operator) after each
        matvec.
    """

    eigenvalues: jax.Array
    eigenvectors: jax.Array
    residuals: jax.Array
    history: jax.Array
    residual_history: jax.Array


def power_iteration(matvec: Matvec, v0: jax.Array, num_iters: int) -> PowerIterationResult:
    """Power iteration with Hotelling deflation for the ``k`` eigenpairs of largest ``|λ|``.

    For ``i = 1..k``: iterate ``u ← B u / ‖B u‖`` for ``num_iters`` steps on the deflated
    operator ``B = A − Σ_{j<i} λ_j u_j u_jᵀ`` and report the Rayleigh quotient ``λ_i = u_iᵀ A u_i``
    (von Mises 1929; Hotelling 1933). The error decays like ``|λ_{i+1}/λ_i|^t``, much slower than
    Lanczos, and the method finds the largest *magnitude* eigenvalue: on a Hessian whose most
    negative eigenvalue dominates it returns that one. It is the method of most deep-learning
    sharpness code (e.g. Cohen et al. 2021 use Lanczos; Yao et al. 2020, PyHessian, use power
    iteration), kept here for comparison. Costs ``k · num_iters`` matvecs.

    Args:
      matvec: ``x -> A x``, symmetric ``A``, flat ``(d,)`` vectors.
      v0: ``(k, d)`` starting vectors, one per eigenpair (warm starts), or ``(d,)`` for ``k=1``.
      num_iters: static number of matvecs per eigenpair.
    """
    v0 = jnp.atleast_2d(v0)
    k, d = v0.shape

    def one_pair(found, i):
        # ``found`` holds the (value, vector) pairs found so far, zero rows for the others, so
        # the deflation below is a fixed-shape no-op for them (one compiled body for every i).
        found_vals, found_vecs = found

        def deflated(x):
            return matvec(x) - found_vecs.T @ (found_vals * (found_vecs @ x))

        def step(u, _):
            bu = deflated(u)
            theta = jnp.vdot(u, bu)
            res = jnp.linalg.norm(bu - theta * u)
            return bu / jnp.linalg.norm(bu), (theta, res)

        u0 = v0[i] / jnp.linalg.norm(v0[i])
        u, (hist, res_hist) = jax.lax.scan(step, u0, None, length=num_iters)
        au = matvec(u)
        lam = jnp.vdot(u, au)
        found = (found_vals.at[i].set(lam), found_vecs.at[i].set(u))
        return found, (jnp.linalg.norm(au - lam * u), hist, res_hist)

    init = (jnp.zeros((k,), v0.dtype), jnp.zeros((k, d), v0.dtype))
    (values, vectors), (residuals, history, res_history) = jax.lax.scan(
        one_pair, init, jnp.arange(k)
    )
    return PowerIterationResult(values, vectors, residuals, history, res_history)
