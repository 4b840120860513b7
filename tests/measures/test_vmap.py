"""Measures vmapped over the leading run axis of 8 runs equal the per-run measures."""

import jax
import jax.numpy as jnp
import numpy as np

import dl_course.measures as M

NUM_RUNS = 8


def test_vmapped_measures_over_8_runs_equal_per_run_measures(tiny):
    # (The tracking hook's on_eval is checked under vmap in test_tracking.py.)
    loss = lambda p: tiny.mean_loss(p, tiny.x, tiny.y)  # noqa: E731

    def measures(params, key):
        k1, k2, k3 = jax.random.split(key, 3)
        return {
            "top": M.top_eigenvalues(loss, params, 2, key=k1, num_iters=12),
            "trace": M.hessian_trace(loss, params, key=k2, num_samples=8),
            "density": M.spectral_density(loss, params, key=k3, num_probes=2, num_iters=8,
                                          num_points=64),
        }

    # 8 runs: different initializations (a sweep's leading run axis).
    inits = [tiny.init(s) for s in range(NUM_RUNS)]
    params = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *inits)
    keys = jax.random.split(jax.random.key(0), NUM_RUNS)

    batched = jax.jit(jax.vmap(measures))(params, keys)
    single = jax.jit(measures)
    take = lambda t, i: jax.tree_util.tree_map(lambda x: x[i], t)  # noqa: E731
    for i in range(NUM_RUNS):
        ref = single(take(params, i), keys[i])
        got = take(batched, i)
        # Same operations, batched: only summation order differs (float64).
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12), got, ref
        )
    # The runs differ, so the check above is not comparing copies of one run.
    assert np.unique(np.round(np.asarray(batched["top"][0][:, 0]), 6)).size == NUM_RUNS
