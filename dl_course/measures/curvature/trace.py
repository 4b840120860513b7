"""Randomized trace, diagonal and Frobenius-norm estimators on any curvature operator: Hutchinson,
Hutch++, XTrace.

Each estimator comes at two levels: on a flat ``matvec: (d,) -> (d,)`` (names without prefix
``operator_``/``hessian_``: :func:`hutchpp`, :func:`xtrace_estimate`, :func:`hutchinson_diagonal`,
:func:`hutchinson_frobenius_sq`) and on a symmetric pytree operator (Hessian, GGN, Fisher,
preconditioned Hessian; see :mod:`dl_course.measures.curvature.operators`), with ``loss_fn`` front-ends for
the Hessian. All spend a *fixed* number of matvecs (``num_matvecs`` / ``num_samples``), so they
jit and run under ``jax.vmap`` over a leading run axis of ``params`` and ``key``.

Why Hutch++ and XTrace: Hutchinson's error decays like ``‖A‖_F / √m`` with ``m`` matvecs. A network
Hessian is dominated by a few outlier eigenvalues (Papyan 2019; Ghorbani et al. 2019), so most of
``‖A‖_F`` sits in a low-rank part. Hutch++ (Meyer, Musco, Musco & Woodruff 2021) computes that part's
trace exactly from a randomized range finder and applies Hutchinson only to the remainder, reaching
relative error ε with ``O(1/ε)`` instead of ``O(1/ε²)`` matvecs for PSD ``A``. XTrace (Epperly,
Tropp & Webber 2024) makes every probe serve both roles through leave-one-out (exchangeable)
estimates, and yields its own error estimate.

Orthonormal bases come from ``dl_course.linalg.svd`` (safe inside vmapped XLA:CPU programs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dl_course import linalg
from dl_course.measures.curvature.operators import Operator, flat_operator, hessian_operator, pytree_form
from dl_course.measures.curvature.products import DEFAULT_HVP_METHOD

PyTree = Any
Matvec = Callable[[jax.Array], jax.Array]


def _apply_columns(matvec: Matvec, x: jax.Array, batch_size: int | None) -> jax.Array:
    """``A X`` for the columns of ``X`` (d, k), ``batch_size`` matvecs vmapped at a time."""
    return jax.lax.map(matvec, x.T, batch_size=batch_size).T


def _orthonormal_basis(y: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Thin SVD ``Y = U diag(s) Vᵀ`` (columns of ``U`` orthonormal even where ``Y`` is rank
    deficient)."""
    u, s, vt = linalg.svd(y, full_matrices=False)
    return u, s, vt


def _rademacher_samples(fn, matvec: Matvec, dim: int, dtype: Any, key: jax.Array, num_samples: int,
                        batch_size: int | None) -> jax.Array:
    """``[fn(z_j, A z_j)]_{j<m}`` for Rademacher probes ``z_j`` drawn one at a time from
    ``fold_in(key, j)`` and evaluated by ``lax.map(batch_size=...)``, so memory stays at a few
    vectors."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")

    def one(i):
        z = jax.random.rademacher(jax.random.fold_in(key, i), (dim,), dtype)
        return fn(z, matvec(z))

    return jax.lax.map(one, jnp.arange(num_samples), batch_size=batch_size)


def _hutchinson_mean(fn, matvec: Matvec, dim: int, dtype: Any, *, key: jax.Array, num_samples: int = 100,
                     batch_size: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Mean of ``fn(z, A z)`` over Rademacher probes and its standard error ``std(ddof=1)/√m``
    (``nan`` for one sample)."""
    samples = _rademacher_samples(fn, matvec, dim, dtype, key, num_samples, batch_size)
    return jnp.mean(samples), jnp.std(samples, ddof=1) / jnp.sqrt(num_samples)


def hutchinson_trace(
    matvec: Matvec,
    dim: int,
    dtype: Any,
    *,
    key: jax.Array,
    num_samples: int = 100,
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
    return _hutchinson_mean(jnp.vdot, matvec, dim, dtype, key=key, num_samples=num_samples, batch_size=batch_size)


def hutchpp(
    matvec: Matvec,
    dim: int,
    dtype: Any,
    *,
    key: jax.Array,
    num_matvecs: int,
    batch_size: int | None = None,
) -> jax.Array:
    """Hutch++ estimate of ``tr(A)`` with ``num_matvecs`` products (Meyer et al. 2021, Alg. 1).

    With ``k = ⌊m/3⌋`` sketch probes ``S`` and ``m − 2k`` Hutchinson probes ``G`` (Rademacher):

        Q = orth(A S),   tr(A) ≈ tr(Qᵀ A Q) + (1/(m−2k)) tr(Gᵀ (I − QQᵀ) A (I − QQᵀ) G).

    The first term is exact on the range of ``Q``; the second is Hutchinson on the deflated
    operator, unbiased. For PSD ``A``: ``|est − tr A| ≤ ε tr A`` w.p. 1 − δ with
    ``m = O(√log(1/δ)/ε + log(1/δ))``. Requires ``num_matvecs ≥ 3``.
    """
    if num_matvecs < 3:
        raise ValueError(f"Hutch++ needs num_matvecs >= 3, got {num_matvecs}")
    k = num_matvecs // 3
    g_count = num_matvecs - 2 * k
    k_s, k_g = jax.random.split(key)
    s = jax.random.rademacher(k_s, (dim, k), dtype)
    g = jax.random.rademacher(k_g, (dim, g_count), dtype)
    q, _, _ = _orthonormal_basis(_apply_columns(matvec, s, batch_size))
    low_rank = jnp.trace(q.T @ _apply_columns(matvec, q, batch_size))
    g_perp = g - q @ (q.T @ g)
    residual = jnp.sum(g_perp * _apply_columns(matvec, g_perp, batch_size)) / g_count
    return low_rank + residual


def xtrace_estimate(
    matvec: Matvec,
    dim: int,
    dtype: Any,
    *,
    key: jax.Array,
    num_matvecs: int,
    batch_size: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """XTrace estimate of ``tr(A)`` and its error estimate (Epperly, Tropp & Webber 2024, §2).

    ``k = ⌊m/2⌋`` Rademacher probes ``Ω``, ``Y = AΩ``, ``Q = orth(Y)``, ``Z = AQ`` (2k matvecs). For
    each ``i``, ``Q₋ᵢ`` spans ``A Ω₋ᵢ`` (all probes but ``i``) and

        tᵢ = tr(Q₋ᵢᵀ A Q₋ᵢ) + ωᵢᵀ (I − Q₋ᵢQ₋ᵢᵀ) A (I − Q₋ᵢQ₋ᵢᵀ) ωᵢ

    is unbiased (``ωᵢ`` is independent of ``Q₋ᵢ``); the estimate is ``mean tᵢ`` and the error
    estimate ``std(tᵢ)/√k``. No extra matvec is needed: with ``Y = Q R``, ``Q₋ᵢQ₋ᵢᵀ = QQᵀ −
    qᵢqᵢᵀ`` with ``qᵢ = Q sᵢ``, ``sᵢ`` the normalized i-th column of ``R⁻ᵀ`` (orthogonal to the other
    columns of ``R``), and ``A(I − Q₋ᵢQ₋ᵢᵀ)ωᵢ = yᵢ − Z Qᵀωᵢ + Z sᵢ (qᵢᵀωᵢ)``. Here ``R = diag(σ) Vᵀ``
    from the thin SVD, so ``R⁻ᵀ = diag(1/σ) Vᵀ``; ``A Ω`` must have full column rank ``k``
    (true for any operator of rank ≥ k almost surely). Requires ``num_matvecs ≥ 4``. This is the
    basic estimator with Rademacher probes, not the paper's variant with normalized Gaussian probes
    and its rescaling (Epperly et al. 2024, §2.2).
    """
    if num_matvecs < 4:
        raise ValueError(f"XTrace needs num_matvecs >= 4, got {num_matvecs}")
    k = num_matvecs // 2
    if k > dim:
        raise ValueError(f"XTrace needs num_matvecs // 2 <= dim ({dim}), got {num_matvecs}")
    omega = jax.random.rademacher(key, (dim, k), dtype)
    y = _apply_columns(matvec, omega, batch_size)
    q, sig, vt = _orthonormal_basis(y)
    z = _apply_columns(matvec, q, batch_size)
    s = vt / sig[:, None]  # R^{-T} = diag(1/σ) Vᵀ: column i ⟂ columns j ≠ i of R
    s = s / jnp.linalg.norm(s, axis=0, keepdims=True)
    qtz = q.T @ z  # Qᵀ A Q (k, k)
    w = q.T @ omega  # Qᵀ Ω (k, k)
    sw = jnp.sum(s * w, axis=0)  # qᵢᵀ ωᵢ
    low = jnp.trace(qtz) - jnp.sum(s * (qtz @ s), axis=0)  # tr(Q₋ᵢᵀ A Q₋ᵢ)
    u = omega - q @ w + (q @ s) * sw  # (I − Q₋ᵢQ₋ᵢᵀ) ωᵢ as columns
    au = y - z @ w + (z @ s) * sw
    t = low + jnp.sum(u * au, axis=0)
    return jnp.mean(t), jnp.std(t, ddof=1) / jnp.sqrt(k)


def hutchinson_diagonal(
    matvec: Matvec,
    dim: int,
    dtype: Any,
    *,
    key: jax.Array,
    num_samples: int,
    batch_size: int | None = None,
) -> jax.Array:
    """Stochastic diagonal ``diag(A) ≈ (1/m) Σ_j z_j ⊙ A z_j`` with Rademacher ``z_j`` (Bekas,
    Kokiopoulou & Saad 2007). Unbiased; entry ``i`` has variance ``Σ_{j≠i} A_ij² / m``."""
    samples = _rademacher_samples(lambda z, az: z * az, matvec, dim, dtype, key, num_samples, batch_size)
    return jnp.mean(samples, axis=0)


def exact_diagonal(matvec: Matvec, dim: int, dtype: Any, batch_size: int | None = None) -> jax.Array:
    """``diag(A)_i = e_iᵀ A e_i``: one matvec per coordinate (``dim`` in all; small models)."""
    eye = jnp.eye(dim, dtype=dtype)
    return jax.lax.map(lambda e: jnp.vdot(e, matvec(e)), eye, batch_size=batch_size)


def hutchinson_frobenius_sq(matvec: Matvec, dim: int, dtype: Any, **kwargs) -> tuple[jax.Array, jax.Array]:
    """``‖A‖_F² = tr(AᵀA) = E‖A z‖²`` for Rademacher ``z`` (Hutchinson on ``AᵀA``; one matvec per
    sample), and the standard error of the mean; the keyword arguments (``key``, ``num_samples``,
    ``batch_size``) are those of :func:`hutchinson_trace`."""
    return _hutchinson_mean(lambda z, az: jnp.vdot(az, az), matvec, dim, dtype, **kwargs)


# ------------------------------------------------------------------------------------------------
# Pytree-operator and Hessian front-ends.


operator_trace = pytree_form(hutchinson_trace, "operator_trace", "Hutchinson trace ``(estimate, stderr)``")
operator_hutchpp_trace = pytree_form(hutchpp, "operator_hutchpp_trace", "Hutch++ trace")
operator_xtrace = pytree_form(xtrace_estimate, "operator_xtrace", "XTrace ``(estimate, error estimate)``")
operator_frobenius_sq = pytree_form(hutchinson_frobenius_sq, "operator_frobenius_sq",
                                    "``(estimate, stderr)`` of ``‖A‖_F² = Σ_i λ_i²``")




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
    :func:`~dl_course.measures.curvature.operators.hessian_operator`."""
    return operator_trace(
        hessian_operator(loss_fn, params, hvp_method), params, key=key, num_samples=num_samples,
        batch_size=batch_size,
    )






def operator_diagonal(
    operator: Operator, params: PyTree, *, key: jax.Array | None = None, num_samples: int = 100,
    exact: bool = False, batch_size: int | None = None,
) -> PyTree:
    """Diagonal of a pytree operator as a pytree like ``params``: Hutchinson's (Bekas et al.
    2007, ``num_samples`` matvecs, needs ``key``) or, with ``exact=True``, one matvec per
    parameter (see :func:`hutchinson_diagonal`, :func:`exact_diagonal`)."""
    matvec, flat, unravel = flat_operator(operator, params)
    if exact:
        diag = exact_diagonal(matvec, flat.shape[0], flat.dtype, batch_size)
    else:
        if key is None:
            raise ValueError("the stochastic diagonal needs a key (or pass exact=True)")
        diag = hutchinson_diagonal(
            matvec, flat.shape[0], flat.dtype, key=key, num_samples=num_samples, batch_size=batch_size
        )
    return unravel(diag)


def hutchpp_trace(loss_fn: Callable[[PyTree], jax.Array], params: PyTree, **kwargs) -> jax.Array:
    """Hutch++ estimate of ``tr ∇²L(θ)`` with ``num_matvecs`` Hessian-vector products (Meyer et
    al. 2021; keyword arguments of :func:`hutchpp`)."""
    return operator_hutchpp_trace(hessian_operator(loss_fn, params), params, **kwargs)


def xtrace(loss_fn: Callable[[PyTree], jax.Array], params: PyTree, **kwargs) -> jax.Array:
    """XTrace estimate of ``tr ∇²L(θ)`` with ``num_matvecs`` HVPs (Epperly et al. 2024; keyword
    arguments of :func:`xtrace_estimate`). For its error estimate use :func:`operator_xtrace`."""
    return operator_xtrace(hessian_operator(loss_fn, params), params, **kwargs)[0]


def hessian_diagonal(loss_fn: Callable[[PyTree], jax.Array], params: PyTree, **kwargs) -> PyTree:
    """``diag ∇²L(θ)`` as a pytree like ``params``: Hutchinson probes (Bekas et al. 2007) or,
    with ``exact=True``, one HVP per parameter (small models); keyword arguments of
    :func:`operator_diagonal`."""
    return operator_diagonal(hessian_operator(loss_fn, params), params, **kwargs)
