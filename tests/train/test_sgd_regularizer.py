"""The engine's explicit SGD regularizer (grid key ``sgd_regularizer``, Smith et al. 2021).

One engine step of SGD with the regularizer equals one step of GD on the modified loss
``L + (λ/4m) Σ_k ‖∇L̂_k‖²`` computed by ``dl_course.measures.sgd_modified_loss`` (autodiff of the
measure vs the engine's double-backprop objective), and changing λ does not recompile."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.measures import sgd_modified_loss
from dl_course.train import ConfigError, sweep
from dl_course.train.build import build_program
from dl_course.train.gradient_penalty import split_batch, sub_batch_gradient_penalty
from dl_course.train.program import init_run, train_step
from tests.compile_counter import count_compilations
from tests.train.conftest import tiny_config


def _config(**kw):
    return tiny_config(**{"optimizer": "sgd", "batch_size": 60, "regularizer_batch_size": 15, "steps": 10,
                          "eval_every": 5, **kw})


def test_regularized_step_is_gd_on_the_modified_loss(small_mnist1d):
    config = _config()
    prog, task = build_program(config, small_mnist1d, None, None, ["sgd_regularizer"])
    data = {k: jnp.asarray(getattr(small_mnist1d, k)) for k in ("x_train", "y_train", "x_test", "y_test")}
    eta, lam = 0.1, 0.7
    hp = {"learning_rate": jnp.float32(eta), "sgd_regularizer": jnp.float32(lam)}
    state = init_run(prog, 0, hp, data)
    new, _ = jax.jit(lambda s: train_step(prog, s, data, jnp.int32(0)))(state)
    idx = np.asarray(state.batch_order[:60])  # the first minibatch of epoch 0
    batch = {"x": data["x_train"][idx], "y": data["y_train"][idx]}
    key = jax.random.fold_in(jax.random.fold_in(state.key, 2), 0)  # the engine's dropout key (unused by an MLP)

    def loss_fn(p, b):
        return task.loss(p, state.model_state, b, key, True)[0]

    def both(p):
        modified = jax.grad(lambda q: sgd_modified_loss(loss_fn, q, split_batch(batch, 15), lam))(p)
        return modified, jax.grad(lambda q: loss_fn(q, batch))(p)

    grads, plain_grads = jax.jit(both)(state.params)
    expected = jax.tree.map(lambda p, g: p - eta * g, state.params, grads)
    plain = jax.tree.map(lambda p, g: p - eta * g, state.params, plain_grads)
    for got, want, base in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected), jax.tree.leaves(plain)):
        scale = float(np.max(np.abs(np.asarray(want) - np.asarray(base))))
        assert scale > 1e-5  # the regularizer moves this step measurably
        # float32 double backprop through a 2-layer MLP: agreement to ~1e-6 absolute, 1e-3 of the reg's effect
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=max(1e-3 * scale, 2e-6))


def test_penalty_of_one_sub_batch_is_the_squared_gradient_norm():
    w = jnp.array([0.3, -1.2])
    x = jnp.arange(12.0).reshape(6, 2) / 6
    y = jnp.linspace(-1, 1, 6)

    def loss(p, b):
        return 0.5 * jnp.mean((b["x"] @ p - b["y"]) ** 2)

    batch = {"x": x, "y": y}
    g = np.asarray(jax.grad(loss)(w, batch))
    np.testing.assert_allclose(sub_batch_gradient_penalty(loss, w, batch, 6), g @ g, rtol=1e-6)
    per = [np.asarray(jax.grad(loss)(w, {"x": x[i:i + 2], "y": y[i:i + 2]})) for i in (0, 2, 4)]
    penalty = jax.jit(sub_batch_gradient_penalty, static_argnums=(0, 3))
    np.testing.assert_allclose(penalty(loss, w, batch, 2), np.mean([q @ q for q in per]), rtol=1e-6)
    with pytest.raises(ValueError, match="divisor"):
        sub_batch_gradient_penalty(loss, w, batch, 4)


def test_changing_the_regularizer_strength_does_not_recompile(small_mnist1d):
    config = _config()
    with count_compilations() as first:
        a = sweep(config, seeds=[0], learning_rates=[0.1], data=small_mnist1d, sgd_regularizer=[0.0, 0.5])
    assert first[0] > 0
    with count_compilations() as again:
        b = sweep(config, seeds=[0], learning_rates=[0.1], data=small_mnist1d, sgd_regularizer=[0.0, 2.0])
    assert again[0] == 0, "a new regularizer strength must reuse the compiled program"
    np.testing.assert_array_equal(a.metrics["train_loss"][0], b.metrics["train_loss"][0])  # λ = 0 rows agree
    assert not np.allclose(a.metrics["train_loss"][1], b.metrics["train_loss"][1])  # λ reaches the objective


def test_regularizer_batch_size_must_divide_the_batch(small_mnist1d):
    with pytest.raises(ConfigError, match="regularizer_batch_size 7 must divide the batch size 60"):
        sweep(_config(regularizer_batch_size=7), seeds=[0], learning_rates=[0.1], data=small_mnist1d,
              sgd_regularizer=[0.1])
