"""The measure registry: vmapped over runs equals per run, values equal the direct functions, and
a measure's value does not depend on which other measures are selected (float64, see conftest)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dl_course.measures as M

NUM_RUNS = 3
# Small but complete: every loop (bisection, ascent, Monte Carlo, Lanczos, Hutchinson) runs.
CONFIG = M.MeasureConfig(num_mc_samples=4, num_bisection_steps=5, ascent_steps=3, lanczos_iters=5,
                         trace_samples=3, noise_batch_size=5, deviation_on="loss")


def _init(seed):
    r = np.random.default_rng(seed)
    return {"w0": jnp.asarray(r.standard_normal((3, 6)) / 2), "b0": jnp.asarray(0.1 * r.standard_normal(6)),
            "w1": jnp.asarray(r.standard_normal((6, 3)) / 2), "b1": jnp.asarray(0.1 * r.standard_normal(3))}


def _apply(params, model_state, x):
    return jax.nn.relu(x @ params["w0"] + params["b0"]) @ params["w1"] + params["b1"]


# One compiled per-run program shared by the tests (the whole suite takes ~10 s to compile).
_single = jax.jit(lambda c: M.generalization_measures(_apply, c, config=CONFIG))


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def test_vmapped_registry_equals_per_run_measures(tiny):
    params = _stack([_init(s) for s in range(NUM_RUNS)])
    inits = _stack([_init(100 + s) for s in range(NUM_RUNS)])
    keys = jax.random.split(jax.random.key(0), NUM_RUNS)
    batched = M.vmapped_generalization_measures(_apply, config=CONFIG)(params, inits, {}, keys, tiny.x, tiny.y)
    assert set(batched) == set(M.GENERALIZATION_MEASURES)
    assert set().union(*M.MEASURE_FAMILIES.values()) == set(M.GENERALIZATION_MEASURES)
    take = lambda t, i: jax.tree_util.tree_map(lambda v: v[i], t)  # noqa: E731
    for i in range(NUM_RUNS):
        ref = _single(M.MeasureContext(take(params, i), take(inits, i), {}, tiny.x, tiny.y, keys[i]))
        for name in ref:
            # Same operations batched: summation order only (float64). Bisection compares an
            # estimate with the deviation; a flip at a comparison would show as a gross error.
            np.testing.assert_allclose(batched[name][i], ref[name], rtol=1e-8, atol=1e-12, err_msg=name)
    # The runs differ (the check is not comparing copies of one run).
    assert np.unique(np.round(np.asarray(batched["pacbayes_flatness"]), 8)).size == NUM_RUNS


def test_registry_values_match_direct_functions_and_do_not_depend_on_the_selection(tiny):
    params, init = _init(1), _init(2)
    ctx = M.MeasureContext(params, init, {}, tiny.x, tiny.y, jax.random.key(3))
    full = _single(ctx)
    some = jax.jit(lambda c: M.generalization_measures(
        _apply, c, ["pacbayes_orig", "lambda_max", "gradient_noise"], CONFIG))(ctx)
    for name, value in some.items():
        np.testing.assert_allclose(value, full[name], rtol=1e-10, err_msg=name)
    gamma = M.output_margin(_apply(params, {}, tiny.x), tiny.y, 0.1)
    np.testing.assert_allclose(full["inverse_margin"], 1 / gamma**2, rtol=1e-12)
    np.testing.assert_allclose(full["log_prod_of_spec_over_margin"],
                               M.log_prod_of_spec_over_margin(M.layer_norms(params), gamma), rtol=1e-12)
    np.testing.assert_allclose(full["num_params"], 18 + 6 + 18 + 3)
    # 1/σ′² and the bounds share one σ′.
    sigma = full["pacbayes_flatness"] ** -0.5
    np.testing.assert_allclose(full["pacbayes_init"], M.pacbayes_bound(params, sigma, 20, init), rtol=1e-10)
    with pytest.raises(ValueError, match="valid"):
        M.generalization_measures(_apply, ctx, ["sharpness_of_the_soul"])
    with pytest.raises(ValueError, match="valid"):
        M.generalization_measures(_apply, ctx, ["num_params"], CONFIG._replace(deviation_on="accuracy"))


def test_error_deviation_radius_keeps_the_train_error_within_the_deviation(tiny):
    # Jiang et al.'s setting: σ′ from the 0-1 training error. At the returned σ′ the MC mean of
    # the error increase sits at the deviation from below within one error quantum per sample
    # average (the error is piecewise constant in σ; bisection keeps increase(lo) ≤ dev).
    params = _init(4)
    run = M.MeasureRun(_apply, M.MeasureContext(params, params, {}, tiny.x, tiny.y, jax.random.key(0)),
                       M.MeasureConfig())
    res = M.pacbayes_sigma(run.error, params, key=jax.random.key(0), num_samples=64, num_bisection_steps=25)
    assert abs(res.increase - 0.1) <= 1 / (20 * 64) + 1e-12
    # Worst case (Algorithm 2): ascent on the loss, deviation on the error. The error moves in
    # jumps (of one or more examples as the ascent's end point moves), so α′ sits at a jump across
    # the deviation: just below it the increase is ≤ 0.1, just above it > 0.1 (resolution of 25
    # bisection steps: (4e5)^(2^-25) − 1 ≈ 4e-7).
    alpha = M.sharpness_alpha(run.loss, params, deviation_fn=run.error, num_steps=5, num_bisection_steps=25)
    below, above = (M.worst_case_increase(run.loss, params, f * alpha.radius, deviation_fn=run.error, num_steps=5)
                    for f in (1 - 1e-5, 1 + 1e-5))
    assert below <= 0.1 + 1e-12 < above
