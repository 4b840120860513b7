"""Properties every rule must have to live inside the engine's jitted, vmapped sweep.

- State trees keep their structure, shapes and dtypes across updates, for random pytrees and
  parameter dtypes (hypothesis; checked abstractly with ``jax.eval_shape``, which traces the same
  code without compiling it).
- ``init`` does not depend on the hyperparameters.
- Every rule runs under ``jax.vmap`` over a batch of learning rates (and of all its numeric
  hyperparameters at once), and the vmapped results equal the runs done one at a time.
- A jitted, vmapped update compiles once, whatever the learning-rate values.
- Low-precision parameters are updated with float32 arithmetic.
"""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_course import optim

# Every registered rule, plus SAM in its other configuration (adaptive, around Adam).
VARIANTS = {**{name: (name, {}) for name in optim.REGISTRY}, "asam_adam": ("sam", {"adaptive": True, "base": "adam"})}
RULES = sorted(VARIANTS)

# These test programs are small and run once: LLVM's optimisation passes cost more than they save.
fast_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _defaults(variant):
    """A valid hyperparameter set: learning rate 0.01 and the numeric defaults of the factory (and,
    for SAM, of its base rule)."""
    name, options = VARIANTS[variant]
    factories = [optim.get(name)]
    if name == "sam":
        factories.append(optim.BASE_RULES[options.get("base", "sgd")])
    defaults = {}
    for factory in reversed(factories):
        defaults.update({k: p.default for k, p in inspect.signature(factory).parameters.items()})
    return {"learning_rate": 0.01, **{k: defaults[k] for k in optim.hyperparameter_names(name, **options)[1:]}}


def _make(variant, hparams):
    name, options = VARIANTS[variant]
    return optim.get(name)(**hparams, **options)


def _quadratic_grad_fn(params):
    """Gradient of ½‖θ‖², the ``grad_fn`` handed to every rule (only SAM calls it)."""
    return params


def _step(variant, hparams, grads, state, params):
    return _make(variant, hparams).update(grads, state, params, grad_fn=_quadratic_grad_fn)


@st.composite
def pytrees(draw):
    """A dict of 1–3 leaves, each of rank 0–3 with sides 1–3, one float dtype for all."""
    dtype = draw(st.sampled_from([jnp.float32, jnp.bfloat16, jnp.float16]))
    n_leaves = draw(st.integers(1, 3))
    shapes = [tuple(draw(st.lists(st.integers(1, 3), max_size=3))) for _ in range(n_leaves)]
    nested = draw(st.booleans())
    leaves = {f"leaf{i}": jax.ShapeDtypeStruct(shape, dtype) for i, shape in enumerate(shapes)}
    if nested and n_leaves > 1:
        leaves = {"outer": {"inner": leaves.pop("leaf0")}, "rest": [leaves[k] for k in sorted(leaves)]}
    return leaves


def _signature(tree):
    return jax.tree.structure(tree), [(x.shape, jnp.dtype(x.dtype)) for x in jax.tree.leaves(tree)]


@settings(max_examples=15, deadline=None)
@given(spec=pytrees())
def test_state_and_update_keep_structure_shapes_and_dtypes(spec):
    for name in RULES:
        # float32 jnp scalars, as the engine passes them (strongly typed, unlike Python floats).
        hparams = {k: jnp.float32(v) for k, v in _defaults(name).items()}
        tx = _make(name, hparams)
        state0 = jax.eval_shape(tx.init, spec)

        def two_steps(params, state, name=name, hparams=hparams):
            for _ in range(2):
                updates, state = _step(name, hparams, params, state, params)
                params = optax.apply_updates(params, updates)
            return updates, state

        updates, state2 = jax.eval_shape(two_steps, spec, state0)
        assert _signature(state2) == _signature(state0), name
        assert _signature(updates) == _signature(spec), name
        # Floating state leaves follow the parameter dtype (counters stay int32).
        param_dtype = jax.tree.leaves(spec)[0].dtype
        for leaf in jax.tree.leaves(state0):
            assert leaf.dtype in (param_dtype, jnp.int32), (name, leaf.dtype)


@settings(max_examples=15, deadline=None)
@given(spec=pytrees(), batch=st.integers(1, 4))
def test_every_rule_traces_under_vmap_over_all_its_hyperparameters(spec, batch):
    """Each numeric hyperparameter of ``hyperparameter_names`` is batched (leading axis ``batch``);
    params, grads and state are shared. Outputs gain the leading axis."""
    for name in RULES:
        hparams = {k: jax.ShapeDtypeStruct((batch,), jnp.float32) for k in _defaults(name)}
        state = jax.eval_shape(_make(name, _defaults(name)).init, spec)
        step = jax.vmap(lambda hp, g, s, p, name=name: _step(name, hp, g, s, p), in_axes=(0, None, None, None))
        updates, new_state = jax.eval_shape(step, hparams, spec, state, spec)
        for out, ref in zip(jax.tree.leaves((updates, new_state)), jax.tree.leaves((spec, state))):
            assert out.shape == (batch, *ref.shape), name
            assert out.dtype == ref.dtype, name


def _numeric_tree(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return {"w": rng.normal(size=(3, 2)).astype(dtype), "b": [rng.normal(size=(2,)).astype(dtype), dtype(0.7)]}


# Hyperparameters that optax's state holds from init (adagrad's a_0 in ``sum_of_squares``, rmsprop's
# initial ``nu``); ours hold them the same way (tests/optim/test_optim_optax_features.py checks the state).
STORED_AT_INIT = {"initial_accumulator_value", "initial_scale"}


def test_init_does_not_depend_on_hyperparameters():
    params = _numeric_tree()
    for name in RULES:
        first = _make(name, _defaults(name)).init(params)
        other = {k: v if k in STORED_AT_INIT else 2.5 * v + 0.1 for k, v in _defaults(name).items()}
        second = _make(name, other).init(params)
        assert jax.tree.structure(first) == jax.tree.structure(second)
        for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second)):
            np.testing.assert_array_equal(a, b)


def _three_steps(name, hparams, params):
    tx = _make(name, hparams)
    state = tx.init(params)
    for _ in range(3):
        updates, state = _step(name, hparams, jax.tree.map(lambda p: p + 0.1, params), state, params)
        params = optax.apply_updates(params, updates)
    return params


def test_vmapped_learning_rates_equal_runs_one_at_a_time():
    """One jitted program runs every rule for a batch of learning rates; each row must equal the
    same rule run alone with that learning rate (float32, same operations: rtol 1e-6)."""
    params = _numeric_tree()
    lrs = np.array([1e-3, 1e-2, 1e-1], np.float32)

    def all_rules(lr):
        return {name: _three_steps(name, {**_defaults(name), "learning_rate": lr}, params) for name in RULES}

    swept = fast_jit(jax.vmap(all_rules))(lrs)
    single = fast_jit(all_rules)
    for i, lr in enumerate(lrs):
        alone = single(lr)
        for name in RULES:
            for a, b in zip(jax.tree.leaves(swept[name]), jax.tree.leaves(alone[name])):
                np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-8, err_msg=name)
    # The learning rate does act: the runs differ.
    for name in RULES:
        assert not np.allclose(swept[name]["w"][0], swept[name]["w"][2]), name


def test_jitted_vmapped_update_compiles_once_across_learning_rate_values():
    params = _numeric_tree()
    traces = []

    @fast_jit
    def sweep_step(lrs, params):
        traces.append(1)  # Python side effect: runs once per trace, not per call

        def one(lr):
            updates = {}
            for name in RULES:
                state = _make(name, _defaults(name)).init(params)
                updates[name] = _step(name, {**_defaults(name), "learning_rate": lr}, params, state, params)[0]
            return updates

        return jax.vmap(one)(lrs)

    first = sweep_step(jnp.array([0.1, 0.2, 0.3]), params)
    second = sweep_step(jnp.array([1e-4, 5.0, 0.7]), params)
    third = sweep_step(jnp.array([0.3, 0.2, 0.1]), params)
    assert len(traces) == 1
    assert sweep_step._cache_size() == 1
    # ... and the new values were used, not baked in.
    np.testing.assert_allclose(third["sgd"]["w"][0], first["sgd"]["w"][2], rtol=1e-6)
    assert not np.allclose(first["adam"]["w"], second["adam"]["w"])


def test_low_precision_parameters_use_float32_arithmetic():
    """With bfloat16 params, grads and state, each update is the float32 update of the same values
    rounded once to bfloat16: exactly ``bf16(u_f32)`` (two steps, the second from the stored
    bfloat16 state). SAM rounds its perturbed point to bfloat16 before calling grad_fn, so there
    the error is up to one more rounding: 2⁻⁷ relative. (In bfloat16 arithmetic Adam's β₂ = 0.999
    would round to 1.0 and ν would never move.)"""
    low = jax.tree.map(lambda x: jnp.asarray(x, jnp.bfloat16), _numeric_tree())
    grads = jax.tree.map(lambda x: jnp.asarray(x * 0.5 - 0.1, jnp.bfloat16), low)
    up = lambda tree: jax.tree.map(lambda x: x.astype(jnp.float32) if x.dtype == jnp.bfloat16 else x, tree)

    @fast_jit
    def both(params, grads):
        out = {}
        for name in RULES:
            state_low = _make(name, _defaults(name)).init(params)
            pairs = []
            for _ in range(2):
                u_high, _ = _step(name, _defaults(name), up(grads), up(state_low), up(params))
                u_low, state_low = _step(name, _defaults(name), grads, state_low, params)
                pairs.append((u_low, u_high))
            out[name] = pairs
        return out

    for name, pairs in both(low, grads).items():
        for u_low, u_high in pairs:
            for a, b in zip(jax.tree.leaves(u_low), jax.tree.leaves(u_high)):
                assert a.dtype == jnp.bfloat16 and b.dtype == jnp.float32
                if VARIANTS[name][0] == "sam":
                    np.testing.assert_allclose(np.float32(a), np.float32(b), rtol=2.0**-7, atol=0)
                else:
                    np.testing.assert_array_equal(np.float32(a), np.float32(b.astype(jnp.bfloat16)), err_msg=name)
