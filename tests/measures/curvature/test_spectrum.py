"""Lanczos and power iteration against numpy.linalg.eigh of dense float64 matrices."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import dl_course.measures as M
from dl_course.measures.curvature.krylov import lanczos, power_iteration


def test_lanczos_top5_matches_eigh_of_dense_hessian(tiny):
    top = np.linalg.eigh(tiny.hessian)[0][::-1][:5]

    @jax.jit
    def run(params, key):
        # 30 < d = 38 iterations: the extreme Ritz values have converged, the full space has not
        # been spanned, so this tests convergence rather than an exact similarity transform.
        return M.hessian_eigenpairs(tiny.loss, params, 5, key=key, num_iters=30)

    t = run(tiny.params, jax.random.key(0))
    # Required accuracy 1e-6 relative (the residuals below show ~1e-11 is reached).
    np.testing.assert_allclose(t.eigenvalues, top, rtol=1e-6)
    # Eigenvectors: pytrees with leading axis k, unit norm, and H u = λ u up to the residual,
    # which must equal the Lanczos formula |β_m s_mi| (the reliability indicator we report).
    assert jax.tree_util.tree_structure(t.eigenvectors) == jax.tree_util.tree_structure(tiny.params)
    assert t.eigenvectors["w0"].shape == (5, 3, 5)
    vecs = jax.vmap(lambda t_: ravel_pytree(t_)[0])(t.eigenvectors)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-10)
    true_res = np.linalg.norm(vecs @ tiny.hessian - t.eigenvalues[:, None] * vecs, axis=1)
    np.testing.assert_allclose(t.residuals, true_res, rtol=1e-3, atol=1e-12)
    assert np.all(np.abs(t.eigenvalues - top) <= t.residuals + 1e-12)  # the bound holds


def test_power_iteration_agrees_with_eigh_and_lanczos(tiny):
    evals = np.linalg.eigh(tiny.hessian)[0]
    by_magnitude = evals[np.argsort(-np.abs(evals))]

    @jax.jit
    def run(params, key):
        return M.operator_power_iteration(
            M.hessian_operator(tiny.loss, params), params, 2, key=key, num_iters=300
        )

    res = run(tiny.params, jax.random.key(1))
    # |λ2/λ1| = 0.75 -> after 300 steps the error is ~0.75^600 in the Rayleigh quotient.
    np.testing.assert_allclose(res.eigenvalues, by_magnitude[:2], rtol=1e-8)
    assert np.all(res.residuals < 1e-6)


def test_quadratic_with_known_eigenvalues_is_recovered():
    # L(θ) = ½ θᵀ Q diag(λ) Qᵀ θ in d = 60: the Hessian is Q diag(λ) Qᵀ exactly, everywhere.
    rng = np.random.default_rng(0)
    d = 60
    lam = np.concatenate([[50.0, 20.0, 10.0, 5.0, 2.0], rng.uniform(-1.0, 1.0, d - 8), [-3.0, -4.0, -8.0]])
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a = jnp.asarray(q @ np.diag(lam) @ q.T)
    params = {"a": jnp.zeros(40), "b": jnp.zeros((4, 5))}
    loss = lambda p: 0.5 * ravel_pytree(p)[0] @ a @ ravel_pytree(p)[0]  # noqa: E731

    @jax.jit
    def run(params, key):
        top = M.top_eigenvalues(loss, params, 5, key=key, num_iters=40)
        bottom = M.bottom_eigenvalues(loss, params, 3, key=key, num_iters=40)
        return top, bottom

    (top_vals, top_vecs), (bottom_vals, _) = run(params, jax.random.key(2))
    np.testing.assert_allclose(top_vals, [50, 20, 10, 5, 2], rtol=1e-8)
    np.testing.assert_allclose(bottom_vals, [-8, -4, -3], rtol=1e-8)
    # Eigenvectors match Q's columns up to sign.
    u = np.asarray(jax.vmap(lambda t: ravel_pytree(t)[0])(top_vecs))
    np.testing.assert_allclose(np.abs(np.sum(u * q[:, :5].T, axis=1)), 1.0, rtol=1e-8)


def test_lanczos_survives_invariant_subspaces_and_full_dimension():
    # A rank-3 operator in d = 12: the Krylov space is invariant after 3 steps, and a start
    # vector inside an eigenspace breaks down after 1 step. With restarts, m = d iterations
    # reproduce the whole spectrum (zeros included) with no NaNs.
    rng = np.random.default_rng(3)
    u = np.linalg.qr(rng.standard_normal((12, 3)))[0]
    a = jnp.asarray(u @ np.diag([3.0, -2.0, 1.0]) @ u.T)
    expected = np.sort(np.concatenate([[3.0, -2.0, 1.0], np.zeros(9)]))

    @jax.jit
    def run(v0):
        return lanczos(lambda x: a @ x, v0, 50).ritz_values  # clipped to d = 12

    for v0 in (rng.standard_normal(12), u[:, 0]):
        vals = run(jnp.asarray(v0))
        assert vals.shape == (12,)
        np.testing.assert_allclose(vals, expected, atol=1e-12)


def test_power_iteration_history_converges_to_final_value():
    a = jnp.diag(jnp.array([4.0, 2.0, 1.0, 0.5]))
    res = jax.jit(lambda v: power_iteration(lambda x: a @ x, v, 60))(jnp.ones((1, 4)))
    assert res.history.shape == (1, 60)
    np.testing.assert_allclose(res.history[0, -1], 4.0, rtol=1e-12)
    # The Rayleigh-quotient error decays like (λ2/λ1)^(2t) = 4^-t.
    err = 4.0 - np.asarray(res.history[0, :10])
    assert np.all(err[1:] < err[:-1]) and err[9] < 1e-4 * err[0]


def test_block_krylov_equals_lanczos_for_one_vector_and_resolves_a_cluster_from_a_block():
    """float64, d = 60, eigenvalues 10, 9.99, 9.9, 5 above a bulk in [−1, 1]. (i) From one start
    vector, block_krylov is Lanczos: the same Ritz values and residuals (1e-12). (ii) From a block of
    the top-3 eigenvectors perturbed by 5% noise, 9 matvecs (depth 3) give all three cluster
    eigenvalues to 1e-3, where 9 Lanczos steps from their sum leave the second off by > 1e-2;
    the reported residuals equal the true ‖A y − θ y‖ and bound the errors. (iii) Zero rows of the
    start block are skipped, all zero is a cold start, and the full space gives the spectrum."""
    from dl_course.measures.curvature.krylov import block_krylov

    rng = np.random.default_rng(0)
    d = 60
    lam = np.concatenate([[10.0, 9.99, 9.9, 5.0], rng.uniform(-1.0, 1.0, d - 4)])
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a = q @ np.diag(lam) @ q.T
    mv = lambda x: jnp.asarray(a) @ x  # noqa: E731
    v0 = jnp.asarray(rng.standard_normal(d))
    one, lz = jax.jit(lambda v: (block_krylov(mv, v[None], 15), lanczos(mv, v, 15)))(v0)
    np.testing.assert_allclose(one.ritz_values, lz.ritz_values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(one.residuals, lz.residuals, rtol=0, atol=1e-12)

    y = jnp.asarray((q[:, :3] + 0.05 * rng.standard_normal((d, 3))).T)
    blk, summed = jax.jit(lambda y: (block_krylov(mv, jnp.concatenate([y, jnp.zeros((2, d))]), 9),
                                     lanczos(mv, y.sum(0), 9)))(y)
    top = np.asarray(blk.ritz_values[-3:][::-1])
    assert np.all(np.abs(top - lam[:3]) < 1e-3)
    assert abs(summed.ritz_values[-2] - lam[1]) > 1e-2
    vecs = np.asarray(blk.ritz_coeffs.T @ blk.basis)
    true_res = np.linalg.norm(vecs @ a - np.asarray(blk.ritz_values)[:, None] * vecs, axis=1)
    np.testing.assert_allclose(blk.residuals, true_res, rtol=1e-6, atol=1e-12)
    assert np.all(np.abs(top - lam[:3]) <= np.asarray(blk.residuals[-3:][::-1]) + 1e-12)
    np.testing.assert_allclose(np.asarray(blk.basis @ blk.basis.T), np.eye(9), atol=1e-12)
    full = jax.jit(lambda: block_krylov(mv, jnp.zeros((2, d)), d))()
    np.testing.assert_allclose(full.ritz_values, np.sort(lam), rtol=0, atol=1e-12)
