"""Batch-norm refresh: exact pooled statistics; the weights are never touched."""

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.uncertainty.batchnorm import refresh_batch_stats

from .conftest import TinyNet, init_variables


def _setup(momentum=0.9, dropout=0.0, n=50):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(2.0, 3.0, (n, 4)), jnp.float32)  # off-centre, so stats must move
    model = TinyNet(hidden=6, momentum=momentum, dropout=dropout)
    variables = init_variables(model, x[:2])
    params, model_state = variables["params"], {"batch_stats": variables["batch_stats"]}
    return model, params, model_state, x


def test_refresh_gives_exact_population_stats_of_first_layer():
    model, params, model_state, x = _setup()
    refresh = jax.jit(lambda p, s, k: refresh_batch_stats(model, p, s, x, 16, k))  # 50 = 3·16 + 2
    new_state = refresh(params, model_state, jax.random.key(1))
    old, new = model_state["batch_stats"], new_state["batch_stats"]
    # First BatchNorm sees the raw inputs: its statistics are exactly their mean / biased variance,
    # whatever the batching (float32 sums of 50 numbers of size ~10: rtol 1e-5).
    np.testing.assert_allclose(new["BatchNorm_0"]["mean"], np.asarray(x).mean(0), rtol=1e-5)
    np.testing.assert_allclose(new["BatchNorm_0"]["var"], np.asarray(x).var(0), rtol=1e-5)
    # Every statistic moved away from the initial (0, 1) values.
    for path in (("BatchNorm_0",), ("Block_0", "BatchNorm_0")):
        o, n_ = old, new
        for name in path:
            o, n_ = o[name], n_[name]
        assert not np.allclose(o["mean"], n_["mean"]) and not np.allclose(o["var"], n_["var"])
    assert set(new_state) == set(model_state)


def test_refreshed_eval_pass_equals_full_batch_train_pass():
    # With a single batch of all N examples, the pooled statistics of every layer are that batch's
    # statistics, so the eval-mode network with refreshed stats computes exactly the train-mode
    # (batch-statistics) function on x — for the nested layer too — with the same weights.
    model, params, model_state, x = _setup()

    @jax.jit
    def run(p, s):
        new = refresh_batch_stats(model, p, s, x, x.shape[0], jax.random.key(0))
        eval_out = model.apply({"params": p, **new}, x, train=False)
        train_out, _ = model.apply({"params": p, **s}, x, train=True, mutable=["batch_stats"])
        stale_out = model.apply({"params": p, **s}, x, train=False)
        return eval_out, train_out, stale_out

    eval_out, train_out, stale_out = run(params, model_state)
    # flax normalises with var + 1e-5 in both modes; float32 activations of size ~1: atol 1e-4.
    np.testing.assert_allclose(eval_out, train_out, rtol=1e-4, atol=1e-4)
    assert np.max(np.abs(np.asarray(stale_out) - np.asarray(train_out))) > 0.1  # stale stats differ


def test_refresh_is_independent_of_momentum_and_vmaps():
    model_a, params, state_a, x = _setup(momentum=0.9)
    model_b = TinyNet(hidden=6, momentum=0.5)
    key = jax.random.key(0)

    @jax.jit
    def run(p):
        a = refresh_batch_stats(model_a, p, state_a, x, 25, key)
        b = refresh_batch_stats(model_b, p, state_a, x, 25, key)
        # vmapped over two weight vectors (e.g. two SWAG samples) vs the second one alone.
        stacked = jax.tree_util.tree_map(lambda l: jnp.stack([l, 1.5 * l]), p)
        batched = jax.vmap(lambda q: refresh_batch_stats(model_a, q, state_a, x, 25, key))(stacked)
        second = refresh_batch_stats(model_a, jax.tree_util.tree_map(lambda l: 1.5 * l, p), state_a, x, 25, key)
        return a, b, batched, second

    a, b, batched, second = run(params)
    jax.tree_util.tree_map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6), a, b)
    jax.tree_util.tree_map(lambda u, v: np.testing.assert_allclose(u[1], v, rtol=1e-5, atol=1e-6), batched, second)


def test_no_batchnorm_is_identity_and_dropout_needs_only_the_key():
    x = jnp.ones((8, 4))
    plain = TinyNet(batchnorm=False)
    v = init_variables(plain, x)
    assert refresh_batch_stats(plain, v["params"], {}, x, 4, jax.random.key(0)) == {}
    model, params, model_state, x = _setup(dropout=0.5, n=20)
    out = jax.jit(lambda p, s: refresh_batch_stats(model, p, s, x, 10, jax.random.key(3)))(params, model_state)
    # Dropout sits after the last BatchNorm, so the first layer's stats are still exact.
    np.testing.assert_allclose(out["batch_stats"]["BatchNorm_0"]["mean"], np.asarray(x).mean(0), rtol=1e-5)
