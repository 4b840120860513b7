"""Worst-case sharpness on quadratics (closed forms) and batch sharpness (dense minibatch Hessians)."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import dl_course.measures as M
from dl_course.measures.sharpness.directional import _sample_batches

RNG = np.random.default_rng(0)
D = 6


def _quadratic(h, center):
    """L(θ) = ½ (θ − c)ᵀ H (θ − c) over params {"a": (2,), "b": (4,)} (a pytree, flattened)."""
    h, center = jnp.asarray(h), jnp.asarray(center)

    def loss(params):
        r = ravel_pytree(params)[0] - center
        return 0.5 * r @ h @ r

    return loss


def _params(flat):
    flat = jnp.asarray(flat)
    return {"a": flat[:2], "b": flat[2:]}


def test_epsilon_sharpness_of_diagonal_quadratic_matches_closed_form():
    # For L = ½ Σ h_i θ_i² (h > 0) the box maximum is at the vertex δ_i = sign(θ_i) b_i, giving
    # ½ Σ h_i (|θ_i| + b_i)²; sign ascent from δ = 0 reaches it in 1/step_size steps.
    h = np.array([3.0, 1.0, 0.5, 2.0, 0.1, 4.0])
    theta = np.array([0.5, -1.0, 2.0, -0.3, 1.5, 0.2])
    loss = _quadratic(np.diag(h), np.zeros(D))
    eps = 0.05

    @jax.jit
    def run(params, eps):
        return (
            M.epsilon_sharpness(loss, params, eps, num_steps=25, step_size=0.1),
            M.epsilon_sharpness(loss, params, eps, num_steps=25, step_size=0.1, relative=False),
        )

    rel, absolute = run(_params(theta), eps)
    l0 = 0.5 * np.sum(h * theta**2)
    for res, b in ((rel, eps * (np.abs(theta) + 1)), (absolute, eps * np.ones(D))):
        expected = 0.5 * np.sum(h * (np.abs(theta) + b) ** 2) - l0
        np.testing.assert_allclose(res.increase, expected, rtol=1e-12)
        np.testing.assert_allclose(res.normalized, 100 * expected / (1 + l0), rtol=1e-12)
        np.testing.assert_allclose(ravel_pytree(res.perturbation)[0], np.sign(theta) * b, rtol=1e-12)


def test_sam_and_asam_sharpness_of_quadratic_match_closed_forms():
    b = RNG.standard_normal((D, D))
    h = b @ b.T / D + 0.1 * np.eye(D)  # positive definite, non-diagonal
    center = RNG.standard_normal(D)
    theta = center + RNG.standard_normal(D)
    loss = _quadratic(h, center)
    rho, eta = 0.1, 0.01

    @jax.jit
    def run(theta, center, key):
        return (
            M.sam_sharpness(loss, _params(theta), rho),
            M.sam_sharpness(loss, _params(theta), rho, adaptive=True, eta=eta),
            M.sam_sharpness(loss, _params(center), rho, num_steps=300, key=key),
            M.sam_sharpness(loss, _params(center), rho, num_steps=300, adaptive=True, eta=eta, key=key),
        )

    sam1, asam1, sam_min, asam_min = run(jnp.asarray(theta), jnp.asarray(center), jax.random.key(0))

    # One step from δ = 0 is SAM's perturbation δ = ρ T²g/‖Tg‖ (T = I for SAM, diag(|θ|+η) for
    # ASAM), and the quadratic's increase is exactly gᵀδ + ½ δᵀHδ.
    g = h @ (theta - center)
    for res, t in ((sam1, np.ones(D)), (asam1, np.abs(theta) + eta)):
        delta = rho * t**2 * g / np.linalg.norm(t * g)
        np.testing.assert_allclose(ravel_pytree(res.perturbation)[0], delta, rtol=1e-10)
        np.testing.assert_allclose(res.increase, g @ delta + 0.5 * delta @ h @ delta, rtol=1e-10)

    # At the minimum, max over ‖T⁻¹δ‖ ≤ ρ of ½ δᵀHδ = ½ ρ² λmax(T H T). Projected ascent from a
    # random point of the sphere converges like power iteration on I + cH: 300 steps reach the
    # 1e-8 relative accuracy asserted here (error ratio ≤ 0.97 per step for these spectra).
    for res, t in ((sam_min, np.ones(D)), (asam_min, np.abs(center) + eta)):
        expected = 0.5 * rho**2 * np.linalg.eigvalsh(np.diag(t) @ h @ np.diag(t))[-1]
        np.testing.assert_allclose(res.increase, expected, rtol=1e-8)
        assert np.linalg.norm(ravel_pytree(res.perturbation)[0] / t) <= rho * (1 + 1e-12)


def _regression_data(n=12):
    x = RNG.standard_normal((n, 3))
    return {"x": jnp.asarray(x), "y": jnp.asarray(x @ np.array([1.0, -2.0, 0.5]) + 0.3 * RNG.standard_normal(n))}


def _tanh_regression_loss(params, batch):
    pred = jnp.tanh(batch["x"] @ params["w"]) @ params["v"]
    return jnp.mean((pred - batch["y"]) ** 2)


def _tanh_params():
    return {"w": jnp.asarray(RNG.standard_normal((3, 4))), "v": jnp.asarray(RNG.standard_normal(4))}


def test_m_sharpness_interpolates_between_per_example_and_full_batch_sam():
    data = _regression_data()
    params = _tanh_params()
    rho = 0.05

    @jax.jit
    def run(params):
        full = M.sam_sharpness(lambda p: _tanh_regression_loss(p, data), params, rho).increase
        per_example = jax.vmap(
            lambda x, y: M.sam_sharpness(
                lambda p: _tanh_regression_loss(p, {"x": x[None], "y": y[None]}), params, rho
            ).increase
        )(data["x"], data["y"])
        return (
            full,
            per_example,
            M.m_sharpness(_tanh_regression_loss, params, data, 12, rho),
            M.m_sharpness(_tanh_regression_loss, params, data, 1, rho),
            M.m_sharpness(_tanh_regression_loss, params, data, 5, rho),  # 2 batches, 2 dropped
        )

    full, per_example, m_n, m_1, m_5 = run(params)
    np.testing.assert_allclose(m_n, full, rtol=1e-12)
    np.testing.assert_allclose(m_1, per_example.mean(), rtol=1e-12)
    assert np.isfinite(m_5) and m_5 > 0


def test_batch_sharpness_is_mean_top_eigenvalue_of_dense_minibatch_hessians():
    data = _regression_data()
    params = _tanh_params()
    flat, unravel = ravel_pytree(params)
    key = jax.random.key(3)

    def dense_hessian(batch):
        return jax.hessian(lambda f: _tanh_regression_loss(unravel(f), batch))(flat)

    @jax.jit
    def run(params, key):
        batches = _sample_batches(key, data, 4, 6)
        return (
            M.batch_sharpness(_tanh_regression_loss, params, data, 4, key=key, num_batches=6,
                              num_iters=16),
            M.directional_batch_sharpness(_tanh_regression_loss, params, data, 4, key=key,
                                          num_batches=6),
            jax.vmap(dense_hessian)(batches),
            jax.vmap(lambda b: jax.grad(_tanh_regression_loss)(params, b))(batches),
        )

    (mean, se), (dmean, dse), hessians, grads = run(params, key)
    tops = np.linalg.eigvalsh(np.asarray(hessians))[:, -1]
    # d = 16 = num_iters: Lanczos is exact up to rounding.
    np.testing.assert_allclose(mean, tops.mean(), rtol=1e-10)
    np.testing.assert_allclose(se, tops.std(ddof=1) / np.sqrt(6), rtol=1e-8)
    g = np.asarray(jax.vmap(lambda t: ravel_pytree(t)[0])(grads))
    curv = np.einsum("bi,bij,bj->b", g, np.asarray(hessians), g) / np.sum(g**2, axis=1)
    np.testing.assert_allclose(dmean, curv.mean(), rtol=1e-10)
    np.testing.assert_allclose(dse, curv.std(ddof=1) / np.sqrt(6), rtol=1e-8)
    # Each batch is drawn without replacement.
    idx_batches = _sample_batches(key, {"i": jnp.arange(12)}, 4, 6)["i"]
    assert all(len(set(np.asarray(b).tolist())) == 4 for b in idx_batches)
