"""Outlier structure of Hessian spectra (``dl_course.measures.curvature.outliers``): counting on known lists,
and the H / Gauss–Newton spectra of the tiny MLP against dense float64 matrices."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.measures.curvature import outliers


def test_count_outliers_and_gap_on_known_lists():
    bulk = np.linspace(0.5, 0.1, 10)
    top = np.array([40.0, 30.0, 25.0, 20.0])
    lam = np.concatenate([top, bulk])
    assert outliers.count_outliers(lam) == 4
    gap, rel = outliers.outlier_gap(lam, 4)
    assert gap == pytest.approx(20.0 / 0.5)
    bulk_ratios = bulk[:-1] / bulk[1:]
    assert rel == pytest.approx(gap / np.median(bulk_ratios))
    # Negative values (saddle directions) are ignored by the count; too short a list gives nan.
    assert outliers.count_outliers(np.array([3.0, 1.0, -0.5])) == 1
    assert np.isnan(outliers.outlier_gap(lam[:4], 4)[0])
    assert outliers.expected_outliers("cross_entropy", 10) == 9 and outliers.expected_outliers("mse", 10) == 10


def test_hessian_and_ggn_spectra_match_dense_matrices(tiny):
    def output_loss(z):
        return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(z), tiny.y[:, None], axis=1))

    def logits_fn(p):
        return tiny.apply(p, tiny.x)

    # Dense G = Jᵀ H_z J with J the Jacobian of the flat logits and H_z the Hessian of the loss in them.
    jac = jax.jacobian(lambda f: logits_fn(tiny.unravel(f)).ravel())(tiny.flat)
    z = logits_fn(tiny.params)
    h_z = jax.hessian(lambda v: output_loss(v.reshape(z.shape)))(z.ravel())
    ggn = np.asarray(jac.T @ h_z @ jac)
    eig_h, eig_g = np.linalg.eigvalsh(tiny.hessian)[::-1], np.linalg.eigvalsh(ggn)[::-1]

    out = jax.jit(lambda p, k: outliers.hessian_and_ggn_spectra(
        tiny.loss, logits_fn, output_loss, p, k, top_k=4, lanczos_iters=tiny.dim, trace_samples=500,
        slq_probes=4, slq_iters=20, density_points=200))(tiny.params, jax.random.PRNGKey(0))
    # Lanczos over the whole 38-dimensional space (full reorthogonalization, float64) is exact to
    # rounding: 1e-8 relative is loose by orders of magnitude yet catches H swapped for G.
    np.testing.assert_allclose(out["hessian_top"], eig_h[:4], rtol=1e-8)
    np.testing.assert_allclose(out["ggn_top"], eig_g[:4], rtol=1e-8)
    assert float(out["hessian_min"]) == pytest.approx(eig_h[-1], rel=1e-8, abs=1e-10)
    # Hutchinson with 500 Rademacher probes: within 5 reported standard errors of the trace.
    for name, exact in (("hessian", np.trace(tiny.hessian)), ("ggn", np.trace(ggn))):
        assert abs(float(out[f"{name}_trace"]) - exact) < 5 * float(out[f"{name}_trace_stderr"]), name
        grid, dens = np.asarray(out[f"{name}_density_grid"]), np.asarray(out[f"{name}_density"])
        assert np.sum(dens) * (grid[1] - grid[0]) == pytest.approx(1.0, abs=1e-2)  # a density
    # G is PSD; H is not (the tiny MLP at random init has negative curvature directions).
    assert eig_g[-1] > -1e-10 and eig_h[-1] < -1e-6

