"""SWAG moments, deviations and sample covariance against numpy over the same snapshots."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from dl_course.train.hooks import HookContext
from dl_course.uncertainty import swag


def _trajectory(seed, num_steps, offset=0.0, spread=1.0, dtype=jnp.float64, runs=None):
    """A fake parameter trajectory: pytree leaves [(runs,) T, ...] (a matrix and a vector).
    numpy RNG: test data only (eager jax.random would compile op by op)."""
    rng = np.random.default_rng(seed)
    lead = (num_steps,) if runs is None else (runs, num_steps)
    return {
        "w": jnp.asarray(offset + spread * rng.standard_normal(lead + (2, 2)), dtype),
        "b": jnp.asarray(offset + spread * rng.standard_normal(lead + (3,)), dtype),
    }


def _collect(collector, trajectory):
    """Runs ``update(state, θ_t, step=t)`` for t = 0 … T−1 under one ``lax.scan``."""
    first = jax.tree_util.tree_map(lambda leaf: leaf[0], trajectory)
    steps = jnp.arange(jax.tree_util.tree_leaves(trajectory)[0].shape[0])

    def body(state, inputs):
        params, step = inputs
        return collector.update(state, params, step), None

    state, _ = jax.lax.scan(body, collector.init(first), (trajectory, steps))
    return state


def _numpy_reference(trajectory, start, every, k):
    """θ̄, biased variance and the last K deviations θ_i − θ̄_i (running mean incl. θ_i), over the
    snapshots raveled in ``ravel_pytree`` order (the pytree's leaf order)."""
    leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(trajectory)]
    flat = np.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in leaves], axis=1)
    snaps = flat[[t for t in range(len(flat)) if t >= start and (t - start) % every == 0]]
    devs = np.stack([snaps[i] - snaps[: i + 1].mean(0) for i in range(len(snaps))])[-k:]
    return snaps, snaps.mean(0), snaps.var(0), devs


def test_moments_and_ring_buffer_match_numpy(x64):
    traj = _trajectory(0, 40)
    start, every, k = 5, 3, 4  # collects at steps 5, 8, …, 38: 12 snapshots; the buffer wraps

    @jax.jit
    def run(t):
        state = _collect(swag.swag(k, collect_every=every, start_step=start), t)
        ordered = jax.vmap(lambda d: ravel_pytree(d)[0])(swag.deviation_matrix(state))
        return (state.n, ravel_pytree(state.mean)[0], ravel_pytree(swag.variance(state))[0], ordered,
                swag.num_collected_deviations(state))

    n, got_mean, got_var, ordered, k_collected = run(traj)
    snaps, mean, var, devs = _numpy_reference(traj, start, every, k)
    assert int(n) == len(snaps) == 12 and int(k_collected) == k
    # float64 throughout: only roundoff separates Welford from the two-pass numpy variance.
    np.testing.assert_allclose(got_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(got_var, var, rtol=1e-10)
    np.testing.assert_allclose(ordered, devs, rtol=1e-10, atol=1e-12)


def test_partially_filled_buffer_and_nothing_before_start(x64):
    traj = _trajectory(1, 10)

    @jax.jit
    def run(t):
        state = _collect(swag.swag(20, collect_every=2, start_step=3), t)  # steps 3, 5, 7, 9
        early = _collect(swag.swag(20, collect_every=1, start_step=10), t)
        ordered = jax.vmap(lambda d: ravel_pytree(d)[0])(swag.deviation_matrix(state))
        cov = swag.dense_covariance(state, "swag", scale=1.0)
        return state.n, swag.num_collected_deviations(state), ordered, cov, early.n

    n, k_collected, ordered, cov, n_early = run(traj)
    snaps, mean, _, devs = _numpy_reference(traj, 3, 2, 20)
    assert int(n) == 4 and int(k_collected) == 4 and int(n_early) == 0
    np.testing.assert_allclose(ordered[:4], devs, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ordered[4:], 0.0)
    # The swag posterior normalises the low-rank part by K' − 1 = 3 collected, not K − 1 = 19.
    np.testing.assert_allclose(cov, np.diag(snaps.var(0)) + devs.T @ devs / 3, rtol=1e-10, atol=1e-14)


def test_welford_variance_is_accurate_in_float32():
    # θ ≈ 10 ± 1e-3: the paper's E[θ²] − E[θ]² cancels catastrophically in float32 (ε·100 ≈ 1e-5
    # against a variance of 1e-6); Welford's update keeps about 3 significant digits here.
    traj = _trajectory(2, 200, offset=10.0, spread=1e-3, dtype=jnp.float32)
    var = jax.jit(lambda t: swag.variance(_collect(swag.swag(0, collect_every=1, start_step=0), t)))(traj)
    want = np.asarray(traj["b"], np.float64).var(0)
    np.testing.assert_allclose(var["b"], want, rtol=1e-2)
    naive = np.mean(np.asarray(traj["b"]) ** 2, 0) - np.mean(np.asarray(traj["b"]), 0) ** 2
    assert np.max(np.abs(naive - want) / want) > 0.1  # the naive formula really fails here


@pytest.mark.parametrize("method", ["swag_diag", "swag"])
def test_sample_covariance_within_monte_carlo_error(x64, method):
    traj = _trajectory(3, 30)
    num = 20000

    @jax.jit
    def run(t):
        state = _collect(swag.swag(5, collect_every=2, start_step=4), t)
        draw = jax.vmap(lambda k: ravel_pytree(swag.sample(state, k, method))[0])
        return swag.dense_covariance(state, method), draw(jax.random.split(jax.random.key(4), num))

    cov, samples = run(traj)
    snaps, mean, var, devs = _numpy_reference(traj, 4, 2, 5)
    # Independent construction of the target: the paper's ½(Σ_diag + D Dᵀ/(K−1)) for SWAG
    # (default scale ½), Σ_diag for SWAG-diagonal (default scale 1).
    want = np.diag(var) if method == "swag_diag" else 0.5 * (np.diag(var) + devs.T @ devs / (len(devs) - 1))
    np.testing.assert_allclose(cov, want, rtol=1e-10, atol=1e-14)
    samples = np.asarray(samples)
    # Monte Carlo standard errors of a Gaussian's sample mean and covariance entries:
    # se(μ̂_i) = sqrt(Σ_ii / S), se(Σ̂_ij) = sqrt((Σ_ii Σ_jj + Σ_ij²) / S). Bound: 5 se per entry.
    d = np.diag(want)
    np.testing.assert_array_less(np.abs(samples.mean(0) - mean), 5 * np.sqrt(d / num) + 1e-12)
    emp = np.cov(samples.T, bias=True)
    se = np.sqrt((np.outer(d, d) + want**2) / num)
    np.testing.assert_array_less(np.abs(emp - want), 5 * se + 1e-12)


def test_swa_posterior_and_unknown_method():
    params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(3)}
    state = swag.swag(3, collect_every=1, start_step=0).init(params)
    assert swag.sample(state, jax.random.key(0), "swa") is state.mean
    with pytest.raises(ValueError, match="swag_diag"):
        swag.sample(state, jax.random.key(0), "laplace")
    diag_only = swag.swag(0, collect_every=1, start_step=0).init(params)
    with pytest.raises(ValueError, match="num_deviations"):
        swag.sample(diag_only, jax.random.key(0), "swag")


def test_hook_and_vmap_over_seeds_equal_per_seed():
    """The hook, run vmapped over 3 seeds' trajectories, equals each seed run alone."""
    hook = swag.swag_hook(4, collect_every=2, start_step=1)
    trajs = _trajectory(6, 12, dtype=jnp.float32, runs=3)

    def run(traj):
        def ctx(params, step):
            return HookContext(step=step, params=params, model_state={}, opt_state=(), hparams={},
                               key=None, loss_fn=None, batch_loss_fn=None, data=None)
        first = jax.tree_util.tree_map(lambda l: l[0], traj)
        state = hook.init(ctx(first, 0))

        def body(state, inputs):
            params, step = inputs
            return hook.on_step(state, ctx(params, step)), None

        return jax.lax.scan(body, state, (traj, jnp.arange(12, dtype=jnp.int32)))[0]

    batched = jax.jit(jax.vmap(run))(trajs)
    single = jax.jit(run)
    for s in range(3):
        alone = single({name: leaf[s] for name, leaf in trajs.items()})
        jax.tree_util.tree_map(
            lambda b, a: np.testing.assert_allclose(b[s], a, rtol=1e-6, atol=1e-7), batched, alone)
    assert np.all(np.asarray(batched.n) == 6)  # steps 1, 3, 5, 7, 9, 11
