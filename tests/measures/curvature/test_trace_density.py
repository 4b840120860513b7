"""Hutchinson trace and SLQ spectral density against exact traces of the dense Hessian."""

import jax
import jax.numpy as jnp
import numpy as np

import dl_course.measures as M
from dl_course.measures.curvature.krylov import lanczos


def test_hutchinson_trace_within_four_standard_errors(tiny):
    h = tiny.hessian
    est, se = jax.jit(
        lambda p, k: M.hessian_trace(tiny.loss, p, key=k, num_samples=200, batch_size=8)
    )(tiny.params, jax.random.key(0))
    assert abs(est - np.trace(h)) <= 4 * se
    # The reported standard error estimates the exact one, √(2 Σ_{i≠j} H_ij² / n) for Rademacher
    # probes. With 200 samples the sample std is within ±30% with overwhelming probability
    # (its relative sd is ~√((κ−1)/(4n)) ≈ 0.05–0.1 for these quadratic forms).
    exact_se = np.sqrt(2 * (np.sum(h**2) - np.sum(np.diag(h) ** 2)) / 200)
    assert 0.7 * exact_se < se < 1.3 * exact_se


def test_lanczos_quadrature_is_exact_to_degree_2m_minus_1():
    # Gauss quadrature: Σ_j τ_j θ_j^p = vᵀ A^p v / ‖v‖² for p ≤ 2m − 1 (m Lanczos steps).
    rng = np.random.default_rng(0)
    b = rng.standard_normal((30, 30))
    a = jnp.asarray((b + b.T) / 8)
    v = jnp.asarray(rng.choice([-1.0, 1.0], 30))
    res = jax.jit(lambda v: lanczos(lambda x: a @ x, v, 5))(v)
    tau = np.asarray(res.ritz_coeffs[0]) ** 2
    theta = np.asarray(res.ritz_values)
    an = np.asarray(a)
    for p in (0, 1, 2, 5, 9):
        exact = v @ np.linalg.matrix_power(an, p) @ v / 30
        np.testing.assert_allclose(np.sum(tau * theta**p), exact, rtol=1e-9)


def test_slq_density_integrates_to_one_and_matches_trace_moments(tiny):
    d, h = tiny.dim, tiny.hessian
    num_probes, sigma = 50, 0.02
    grid, dens = jax.jit(
        lambda p, k: M.spectral_density(
            tiny.loss, p, key=k, num_probes=num_probes, num_iters=20, sigma=sigma
        )
    )(tiny.params, jax.random.key(1))
    grid, dens = np.asarray(grid), np.asarray(dens)
    assert np.all(dens >= 0)
    np.testing.assert_allclose(np.trapezoid(dens, grid), 1.0, rtol=1e-12)
    # With Rademacher probes v = z/√d, the first moment is the mean of zᵀHz/d, unbiased for
    # tr(H)/d with variance 2 Σ_{i≠j} H_ij² / d² per probe; the second is the mean of zᵀH²z/d
    # (exact: 20 Lanczos steps integrate degree ≤ 39 exactly) plus σ² from the smoothing.
    # The grid spans ±8σ around the nodes with ~10 points per σ: trapezoidal moments are exact to
    # ~1e-10, far below the statistical tolerance of 4 standard errors.
    m1 = np.trapezoid(grid * dens, grid)
    m2 = np.trapezoid(grid**2 * dens, grid) - sigma**2
    for moment, a in ((m1, h), (m2, h @ h)):
        se = np.sqrt(2 * (np.sum(a**2) - np.sum(np.diag(a) ** 2)) / num_probes) / d
        assert abs(moment - np.trace(a) / d) <= 4 * se, (moment, np.trace(a) / d, se)
    # The estimate is informative: its error is well below the spread of the spectrum.
    assert abs(m1 - np.trace(h) / d) < 0.1 * np.std(np.linalg.eigvalsh(h))
