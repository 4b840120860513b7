"""Learning-rate shapes against optax's schedules with peak 1.0, and ``scheduled`` against optax
optimizers driven by a schedule. Tolerance 1e-6 absolute on multipliers in [0, 1] (float32; the
two implementations differ only by operation order, e.g. 0 + t/W versus (0 − 1)(1 − t/W) + 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dl_course import optim

T = 100

CASES = {
    "constant": ({}, lambda: optax.constant_schedule(1.0)),
    "step": ({}, lambda: optax.piecewise_constant_schedule(1.0, {50: 0.1, 75: 0.1})),
    "step_custom": (
        {"boundaries": (0.3, 0.6, 0.9), "factor": 0.5},
        lambda: optax.piecewise_constant_schedule(1.0, {30: 0.5, 60: 0.5, 90: 0.5}),
    ),
    "cosine": ({"alpha": 0.1}, lambda: optax.cosine_decay_schedule(1.0, T, alpha=0.1)),
    "warmup": ({"warmup_steps": 20, "init_value": 0.1}, lambda: optax.linear_schedule(0.1, 1.0, 20)),
    "warmup_cosine": (
        {"warmup_steps": 20, "alpha": 0.05},
        lambda: optax.warmup_cosine_decay_schedule(0.0, 1.0, 20, T, end_value=0.05),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_shape_equals_optax_schedule_with_peak_one(case):
    kwargs, reference = CASES[case]
    name = case.removesuffix("_custom")
    schedule = optim.get_schedule(name, T, **kwargs)
    steps = np.arange(0, T + 10)  # past the end too: shapes hold their final value
    ours = np.asarray(jax.jit(schedule)(jnp.asarray(steps)))  # traced step, as in the engine
    ref = np.broadcast_to(reference()(jnp.asarray(steps)), steps.shape)  # optax vectorises over steps
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert ours.max() <= 1.0 + 1e-6 and ours.min() >= 0.0
    # Python ints work too (outside jit).
    np.testing.assert_allclose(float(schedule(37)), ref[37], atol=1e-6)


def test_landmark_values():
    """s(0) and the end values, by hand."""
    get = optim.get_schedule
    assert float(get("constant", T)(0)) == 1.0
    assert float(get("step", T)(49)) == 1.0
    np.testing.assert_allclose(float(get("step", T)(50)), 0.1, rtol=1e-6)  # decays AT the boundary
    np.testing.assert_allclose(float(get("step", T)(T)), 0.01, rtol=1e-6)
    assert float(get("cosine", T)(0)) == 1.0
    np.testing.assert_allclose(float(get("cosine", T)(T // 2)), 0.5, atol=1e-6)
    np.testing.assert_allclose(float(get("cosine", T, alpha=0.2)(T)), 0.2, atol=1e-6)
    assert float(get("warmup", T)(0)) == 0.0  # default W = T // 10 = 10
    np.testing.assert_allclose(float(get("warmup", T)(5)), 0.5, atol=1e-6)
    assert float(get("warmup", T)(10)) == 1.0
    assert float(get("warmup_cosine", T, warmup_steps=10)(10)) == 1.0


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match=r"valid: \['constant', 'cosine', 'step', 'warmup', 'warmup_cosine'\]"):
        optim.get_schedule("linear", T)
    with pytest.raises(ValueError, match="total_steps"):
        optim.get_schedule("cosine", 0)
    with pytest.raises(ValueError, match="boundaries"):
        optim.get_schedule("step", T, boundaries=(0.75, 0.5))
    with pytest.raises(ValueError, match="warmup_steps"):
        optim.get_schedule("warmup", T, warmup_steps=T + 1)
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        optim.get_schedule("warmup_cosine", T, warmup_steps=T)


def test_scheduled_rule_equals_optax_rule_with_schedule():
    """lr_t = peak · s(t): ``scheduled(adam, cosine, peak)`` is ``optax.adam(cosine(peak))`` and
    ``scheduled(momentum, warmup_cosine, peak)`` is ``optax.sgd(warmup_cosine(peak), 0.9)``,
    for two peaks vmapped in one program. 30 steps of g = θ − 1, float32, atol 1e-6."""
    peaks = np.array([0.05, 0.2], np.float32)
    total = 30
    theta0 = {"w": jnp.linspace(-1.0, 1.0, 4), "b": jnp.zeros(())}
    grad_fn = lambda th: jax.tree.map(lambda x: x - 1.0, th)

    def run(tx):
        def step(carry, _):
            theta, state = carry
            updates, state = tx.update(grad_fn(theta), state, theta)
            return (optax.apply_updates(theta, updates), state), None

        return jax.lax.scan(step, (theta0, tx.init(theta0)), None, length=total)[0][0]

    cosine = optim.get_schedule("cosine", total, alpha=0.1)
    warm = optim.get_schedule("warmup_cosine", total, warmup_steps=5)

    def ours(peak):
        return (
            run(optim.scheduled(optim.adam, cosine, peak)),
            run(optim.scheduled(optim.momentum, warm, peak, momentum=0.9)),
        )

    swept = jax.jit(jax.vmap(ours))(jnp.asarray(peaks))
    for i, peak in enumerate(peaks):
        peak = float(peak)
        ref_adam = run(optax.adam(optax.cosine_decay_schedule(peak, total, alpha=0.1)))
        ref_momentum = run(optax.sgd(optax.warmup_cosine_decay_schedule(0.0, peak, 5, total), momentum=0.9))
        for ref, got in [(ref_adam, swept[0]), (ref_momentum, swept[1])]:
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
                np.testing.assert_allclose(a[i], b, atol=1e-6)
