"""The optax features beyond optax's own alias tests: a schedule as ``learning_rate``, ``mask=``,
state dtypes, complex parameters, optax's state pytree (checkpoints), and SAM as optax.contrib's.

Each case runs our rule and the optax chain it claims to equal from the same arguments, for 4
steps on a pytree with a complex and a real leaf, and compares the state pytree (structure, and
leaves within 1e-6: float32 arithmetic of the same operations) and the parameters. SAM's cases are
optax's ``contrib/_sam_test.py`` (the one of its four our rule expresses: SGD outer and
normalized-SGD adversary, opaque mode) and the issue's ``inject_hyperparams`` case.
"""

import functools
import inspect

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

from dl_course import optim

fast_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
STEPS = 4


def _schedule():
    return optax.linear_schedule(0.1, 0.01, transition_steps=3)


def _decay_mask(params):
    return {"b": False, "w": True}


# case -> (our factory, optax reference, keyword arguments for both)
CASES = {
    "sgd": (optim.sgd, optax.sgd, {"learning_rate": 0.1}),
    "sgd_schedule": (optim.sgd, optax.sgd, {"learning_rate": _schedule()}),
    "momentum_schedule_bf16_trace": (optim.momentum, optax.sgd,
                                     {"learning_rate": _schedule(), "momentum": 0.9, "accumulator_dtype": jnp.bfloat16}),
    "nesterov": (optim.nesterov, functools.partial(optax.sgd, nesterov=True), {"learning_rate": 0.1, "momentum": 0.8}),
    "adagrad_schedule": (optim.adagrad, optax.adagrad, {"learning_rate": _schedule(), "initial_accumulator_value": 0.3}),
    "rmsprop_momentum": (optim.rmsprop, optax.rmsprop, {"learning_rate": _schedule(), "momentum": 0.9, "nesterov": True,
                                                        "initial_scale": 0.5}),
    "rmsprop_eps_outside": (optim.rmsprop, optax.rmsprop, {"learning_rate": 0.01, "eps_in_sqrt": False}),
    "rmsprop_centered": (optim.rmsprop, optax.rmsprop, {"learning_rate": _schedule(), "centered": True,
                                                        "momentum": 0.5, "initial_scale": 1.0}),
    "adam_schedule": (optim.adam, optax.adam, {"learning_rate": _schedule(), "eps_root": 1e-8}),
    "adam_nesterov_mu_bf16": (optim.adam, optax.adam, {"learning_rate": 0.1, "nesterov": True,
                                                       "mu_dtype": jnp.bfloat16}),
    "adamw_mask_tree": (optim.adamw, optax.adamw, {"learning_rate": _schedule(), "weight_decay": 0.3,
                                                   "mask": {"b": False, "w": True}}),
    "adamw_mask_callable": (optim.adamw, optax.adamw, {"learning_rate": 0.1, "weight_decay": 0.3,
                                                       "mask": _decay_mask}),
    "sign_descent_schedule": (optim.sign_descent, optax.sign_sgd, {"learning_rate": _schedule()}),
    "normalized_gd_schedule": (optim.normalized_gd, optim.OPTAX["normalized_gd"], {"learning_rate": _schedule()}),
}
# Coupled decay: optax.sgd has none; ours equals chain(add_decayed_weights(λ, mask), optax.sgd),
# whose state adds the decay's (leafless) state: same leaves, one more tuple level.
COUPLED = {
    "sgd_decay_mask": (optim.sgd, {"learning_rate": 0.1, "weight_decay": 0.3, "mask": _decay_mask}),
    "momentum_decay_mask": (optim.momentum, {"learning_rate": _schedule(), "momentum": 0.9, "weight_decay": 0.3,
                                             "mask": {"b": False, "w": True}}),
}


def _params():
    return {"w": jnp.array([[1.0 - 2.0j, 0.5j, -3.0], [0.2, 1.5 + 1.0j, -0.7j]], jnp.complex64),
            "b": jnp.array([0.3, -1.2, 2.0], jnp.float32)}


def _gradient(params):
    """The conjugated gradient of a real loss with complex and real leaves (as optax's tests pass it)."""
    def loss(p):
        return jnp.sum(jnp.abs(p["w"] - 0.5j) ** 4) + jnp.sum(jnp.cos(p["b"]) * p["b"] ** 2)

    return jax.tree.map(jnp.conj, jax.grad(loss)(params))


def _trajectory(tx, params):
    state = tx.init(params)
    states = [state]
    for _ in range(STEPS):
        updates, state = tx.update(_gradient(params), state, params)
        params = optax.apply_updates(params, updates)
        states.append(state)
    return params, states


@pytest.fixture(scope="module")
def trajectories():
    """(ours, reference) final params and states of every case, in one compiled program."""
    pairs = {case: (ours(**kw), theirs(**kw)) for case, (ours, theirs, kw) in CASES.items()}
    pairs.update({case: (ours(**kw), optax.chain(optax.add_decayed_weights(kw["weight_decay"], kw["mask"]),
                                                   optax.sgd(kw["learning_rate"], kw.get("momentum"))))
                  for case, (ours, kw) in COUPLED.items()})
    run = fast_jit(lambda p: {c: (_trajectory(a, p), _trajectory(b, p)) for c, (a, b) in pairs.items()})
    return jax.device_get(run(_params()))


# With a bfloat16 state optax computes β·state in bfloat16 (a Python float times a bfloat16 array
# stays bfloat16); ours upcasts first (base.py, convention 4). The states then differ by up to an
# ulp of bfloat16 (2^-7 relative) per step: these cases (dtype plumbing; the float32 cases check
# the arithmetic at 1e-6) are compared at 2 ulps, 1.6e-2.
LOW_PRECISION_STATE = {"momentum_schedule_bf16_trace", "adam_nesterov_mu_bf16"}


def _assert_trees_close(a, b, tol=1e-6):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        assert x.dtype == y.dtype
        np.testing.assert_allclose(np.asarray(x, np.complex128), np.asarray(y, np.complex128), rtol=tol, atol=tol)


@pytest.mark.parametrize("case", sorted(CASES) + sorted(COUPLED))
def test_state_pytree_and_trajectory_are_optax(case, trajectories):
    """Same state pytree as optax's (structure; leaves at init and after each step) and same
    parameters; coupled decay: same leaves."""
    (ours_params, ours_states), (ref_params, ref_states) = trajectories[case]
    if case in CASES:
        assert jax.tree.structure(ours_states) == jax.tree.structure(ref_states)
    tol = 1.6e-2 if case in LOW_PRECISION_STATE else 1e-6
    _assert_trees_close(ours_states, ref_states, tol)
    _assert_trees_close(ours_params, ref_params, tol)
    assert np.max(np.abs(ours_params["w"] - _params()["w"])) > 1e-2  # the run moved


def test_the_comparison_detects_a_wrong_rule(trajectories):
    """The mask and the schedule each change the result by far more than the 1e-6 compared at."""
    (masked, _), _ = trajectories["adamw_mask_tree"]
    _, (unmasked_ref, _) = trajectories["adam_schedule"]
    assert np.max(np.abs(masked["b"] - unmasked_ref["b"])) < 1e-6  # masked-out leaf: Adam's step
    assert np.max(np.abs(masked["w"] - unmasked_ref["w"])) > 1e-3  # decayed leaf differs
    (scheduled, _), _ = trajectories["sgd_schedule"]
    (constant, _), _ = trajectories["sgd"]
    assert np.max(np.abs(scheduled["w"] - constant["w"])) > 1e-3


def test_state_names_are_optax(trajectories):
    """``optax.tree.get`` finds the same named fields in ours and in optax's state."""
    for case, field in [("momentum_schedule_bf16_trace", "trace"), ("adagrad_schedule", "sum_of_squares"),
                        ("adam_nesterov_mu_bf16", "mu"), ("rmsprop_momentum", "nu")]:
        (_, ours), (_, ref) = trajectories[case]
        tol = 1.6e-2 if case in LOW_PRECISION_STATE else 1e-6
        _assert_trees_close(optax.tree.get(ours[-1], field), optax.tree.get(ref[-1], field), tol)
    (_, ours), _ = trajectories["adagrad_schedule"]
    init_sum = optax.tree.get(ours[0], "sum_of_squares")
    np.testing.assert_array_equal(init_sum["b"], np.full(3, 0.3, np.float32))  # a_0 stored as optax does


def test_optax_checkpoint_restores_into_our_state():
    """Serialize optax's Adam state after 2 steps; restore it into ours and continue 2 steps: the
    same parameters as continuing with optax."""
    params = {"b": jnp.array([0.3, -1.2, 2.0]), "w": jnp.array([1.0, -0.5])}
    ours, theirs = optim.adamw(_schedule(), mask=_decay_mask), optax.adamw(_schedule(), mask=_decay_mask)
    p, s = params, theirs.init(params)
    for _ in range(2):
        u, s = theirs.update(_gradient(p), s, p)
        p = optax.apply_updates(p, u)
    restored = flax.serialization.from_bytes(ours.init(params), flax.serialization.to_bytes(s))
    p_ours, p_ref, s_ours, s_ref = p, p, restored, s
    for _ in range(2):
        u, s_ours = ours.update(_gradient(p_ours), s_ours, p_ours)
        p_ours = optax.apply_updates(p_ours, u)
        v, s_ref = theirs.update(_gradient(p_ref), s_ref, p_ref)
        p_ref = optax.apply_updates(p_ref, v)
    _assert_trees_close(p_ours, p_ref)


def test_scheduled_weight_decay_is_rejected_clearly():
    with pytest.raises(TypeError, match="weight_decay must be a number"):
        optim.adamw(0.1, weight_decay=_schedule())


def _parabola():
    initial = jnp.array([-1.0, 10.0, 1.0])
    final = jnp.array([1.0, -1.0, 1.0])
    return initial, final, jax.grad(lambda p: jnp.sum((p - final) ** 2))


def _optax_sam():
    adversary = optax.chain(optax.contrib.normalize(), optax.sgd(1e-5))
    return optax.contrib.sam(optax.sgd(1e-3), adversary, sync_period=2, opaque_mode=True)


def _sam_run(opt):
    """The first 20 iterates and the iterate after 50 000 steps, with optax.contrib's grad_fn."""
    initial, _, get_updates = _parabola()

    def step(carry, _):
        params, state = carry
        updates, state = opt.update(get_updates(params), state, params, grad_fn=lambda p, i: get_updates(p))
        return (optax.apply_updates(params, updates), state), params

    def run(params, state):
        path = jax.lax.scan(step, (params, state), None, length=20)[1]
        return path, jax.lax.fori_loop(0, 50_000, lambda _, c: step(c, None)[0], (params, state))[0]

    return fast_jit(run)(initial, optax.tree.map_params(opt, lambda v: v, opt.init(initial)))


@pytest.mark.parametrize("impl", ["ours", "optax"])
def test_sam_optax_case(impl):
    """contrib/_sam_test.test_optimization (SGD 1e-3 outer, normalized SGD 1e-5 adversary, opaque
    mode, sync period 2, 50 000 steps): the parabola's minimum within 3e-2; ours takes optax's
    steps (20 compared, 1e-6)."""
    path, final_params = _sam_run(optim.sam(1e-3, rho=1e-5) if impl == "ours" else _optax_sam())
    np.testing.assert_allclose(final_params, _parabola()[1], rtol=3e-2, atol=3e-2)
    if impl == "ours":
        np.testing.assert_allclose(path, _sam_run(_optax_sam())[0], atol=1e-6)


@pytest.mark.parametrize("base, base_hparams", [("sgd", {}), ("momentum", {"momentum": 0.9})])
def test_sam_under_inject_hyperparams(base, base_hparams):
    """``optax.inject_hyperparams(sam)`` builds (its empty ``**base_hparams`` no longer reaches the
    base rule) and takes sam's steps; grad_fn is called as ``grad_fn(params, 0)``."""
    initial, _, get_updates = _parabola()
    calls = []

    def grad_fn(params, i):
        calls.append(i)
        return get_updates(params)

    opt = optim.sam(0.05, rho=0.1, base=base, **base_hparams)
    injected = optax.inject_hyperparams(optim.sam)(learning_rate=0.05, rho=0.1, base=base, **base_hparams)

    def two_steps(tx, params):
        state = tx.init(params)
        for _ in range(2):
            updates, state = tx.update(get_updates(params), state, params, grad_fn=grad_fn)
            params = optax.apply_updates(params, updates)
        return params

    np.testing.assert_allclose(jax.jit(two_steps, static_argnums=0)(injected, initial), two_steps(opt, initial),
                               rtol=1e-6)
    assert set(calls) == {0}


@pytest.mark.parametrize("ours, theirs", [(optim.sgd, optax.sgd), (optim.adagrad, optax.adagrad),
                                          (optim.rmsprop, optax.rmsprop), (optim.adam, optax.adam),
                                          (optim.adamw, optax.adamw), (optim.sign_descent, optax.sign_sgd)],
                         ids=["sgd", "adagrad", "rmsprop", "adam", "adamw", "sign_descent"])
def test_signature_is_optax_prefix(ours, theirs):
    """optax's arguments, in optax's order and with optax's defaults, start our signature (so
    positional calls mean the same); only rmsprop's ``bias_correction`` (its last) is not offered."""
    theirs_params = [p for p in inspect.signature(theirs).parameters.values() if p.name != "bias_correction"]
    ours_params = list(inspect.signature(ours).parameters.values())[:len(theirs_params)]
    assert [p.name for p in ours_params] == [p.name for p in theirs_params]
    assert [p.default for p in ours_params] == [p.default for p in theirs_params]
