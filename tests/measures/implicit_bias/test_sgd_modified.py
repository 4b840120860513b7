"""SGD's modified loss and the mean SGD iterate (``dl_course.measures.implicit_bias.sgd_modified``) against hand
computations, explicit loops over orders and the second-order expansion of Smith et al. (2021)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.measures import all_orders, mean_sgd_epoch, sgd_modified_loss, sgd_modified_loss_terms


def _problem(m=3, b=2, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, b, d))
    y = rng.standard_normal((m, b))
    return x, y


def _ls_loss(theta, batch):
    return 0.5 * jnp.mean((batch["x"] @ theta - batch["y"]) ** 2)


def test_modified_loss_matches_a_hand_computation_and_splits_exactly():
    x, y = _problem()
    theta = np.array([0.4, -0.7, 1.1])
    eta = 0.3
    # By hand (numpy): L̂_k = ½ mean (x θ − y)², ∇L̂_k = x_kᵀ(x_k θ − y_k)/b.
    r = np.einsum("kbd,d->kb", x, theta) - y
    losses = 0.5 * np.mean(r**2, axis=1)
    grads = np.einsum("kbd,kb->kd", x, r) / x.shape[1]
    g = grads.mean(0)
    hand_total = losses.mean() + eta / (4 * 3) * np.sum(grads**2)
    hand_igr = eta / 4 * g @ g
    hand_var = eta / (4 * 3) * np.sum((grads - g) ** 2)
    batches = {"x": jnp.asarray(x), "y": jnp.asarray(y)}
    total = sgd_modified_loss(_ls_loss, jnp.asarray(theta), batches, eta)
    terms = sgd_modified_loss_terms(_ls_loss, jnp.asarray(theta), batches, eta)
    # float64: agreement to rounding (1e-12 relative)
    np.testing.assert_allclose(float(total), hand_total, rtol=1e-12)
    np.testing.assert_allclose([terms.loss, terms.igr, terms.variance], [losses.mean(), hand_igr, hand_var], rtol=1e-12)
    np.testing.assert_allclose(float(terms.total), hand_total, rtol=1e-12)
    assert hand_var > 0.1 * hand_igr  # the variance term is not negligible here: the split is tested


def test_modified_loss_is_vmappable_over_runs():
    x, y = _problem(seed=1)
    batches = {"x": jnp.asarray(x), "y": jnp.asarray(y)}
    thetas = jnp.asarray(np.random.default_rng(2).standard_normal((4, 3)))
    etas = jnp.array([0.0, 0.1, 0.2, 0.4])
    vm = jax.vmap(lambda t, e: sgd_modified_loss(_ls_loss, t, batches, e))(thetas, etas)
    solo = [sgd_modified_loss(_ls_loss, thetas[i], batches, etas[i]) for i in range(4)]
    np.testing.assert_allclose(vm, solo, rtol=1e-12)


def _tanh_loss(theta, batch):
    h = jnp.tanh(batch["x"] * theta[0] + theta[1])
    return 0.5 * jnp.mean((theta[2] * h - batch["y"]) ** 2)


def test_mean_over_orders_equals_an_explicit_loop():
    rng = np.random.default_rng(3)
    m, b = 4, 3
    batches = {"x": jnp.asarray(rng.standard_normal((m, b))), "y": jnp.asarray(rng.standard_normal((m, b)))}
    theta0 = jnp.array([0.8, -0.2, 1.3])
    eta = 0.15
    grad = jax.jit(jax.grad(_tanh_loss))
    ends = []
    for order in itertools.permutations(range(m)):
        th = theta0
        for k in order:
            th = th - eta * grad(th, {"x": batches["x"][k], "y": batches["y"][k]})
        ends.append(np.asarray(th))
    assert all_orders(m).shape == (24, 4) and len({tuple(o) for o in all_orders(m)}) == 24
    got = mean_sgd_epoch(_tanh_loss, theta0, batches, eta)
    np.testing.assert_allclose(got, np.mean(ends, 0), rtol=1e-12, atol=1e-14)
    # the mean differs from a single order's end point: the orders matter at this η
    assert np.max(np.abs(np.asarray(ends[0]) - np.asarray(got))) > 1e-4


def test_mean_iterate_matches_the_second_order_expansion():
    """θ̄_m = θ0 − mη∇L + ½η²(m²∇²L∇L − Σ_k ∇²L̂_k∇L̂_k) + O(η³) (Smith et al. 2021, Sec. 2)."""
    rng = np.random.default_rng(4)
    m, b = 3, 2
    batches = {"x": jnp.asarray(rng.standard_normal((m, b))), "y": jnp.asarray(rng.standard_normal((m, b)))}
    theta0 = jnp.array([0.5, 0.3, -0.9])
    one = lambda k: {"x": batches["x"][k], "y": batches["y"][k]}  # noqa: E731
    gk = [np.asarray(jax.grad(_tanh_loss)(theta0, one(k))) for k in range(m)]
    hk = [np.asarray(jax.hessian(_tanh_loss)(theta0, one(k))) for k in range(m)]
    g, h = np.mean(gk, 0), np.mean(hk, 0)
    errs = []
    for eta in (0.02, 0.01):
        pred = theta0 - m * eta * g + 0.5 * eta**2 * (m**2 * h @ g - sum(hh @ gg for hh, gg in zip(hk, gk)))
        errs.append(np.linalg.norm(np.asarray(mean_sgd_epoch(_tanh_loss, theta0, batches, eta)) - pred))
    assert 6.0 < errs[0] / errs[1] < 10.5  # halving η divides an O(η³) remainder by ~8
