"""The vmapped sweep: equal to per-run training, no recompiles, divergence, determinism, resume."""

import os
import signal

import jax
import numpy as np
import pytest

from dl_course.train import Preempted, sweep, train
from tests.compile_counter import count_compilations
from tests.train.conftest import tiny_config


def _max_rel(a, b):
    return max(float(np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-12))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_sweep_equals_per_run_training(small_mnist1d):
    config = tiny_config()
    res = sweep(config, seeds=[0, 1], learning_rates=[0.05, 0.2], data=small_mnist1d, momentum=[0.0, 0.9])
    assert len(res.grid) == 8 and res.metrics["train_loss"].shape == (8, 5)
    for i in (0, 5, 7):
        g = res.grid[i]
        solo = train(config, g["seed"], g["learning_rate"], data=small_mnist1d, momentum=g["momentum"])
        # float32 training; vmapped and unbatched matmuls may sum in different orders: 1e-5 relative.
        assert _max_rel(jax.tree.map(lambda x: x[i], res.params), jax.tree.map(lambda x: x[0], solo.params)) < 1e-5
        np.testing.assert_allclose(res.metrics["train_loss"][i], solo.metrics["train_loss"][0], rtol=1e-5)
        np.testing.assert_allclose(res.metrics["test_accuracy"][i], solo.metrics["test_accuracy"][0], atol=1e-6)
    assert res.metrics["train_loss"][:, -1].max() < res.metrics["train_loss"][:, 0].min()


def test_changing_hyperparameter_values_does_not_recompile(small_mnist1d):
    config = tiny_config()
    with count_compilations() as first:
        sweep(config, seeds=[0], learning_rates=[0.1, 0.2], data=small_mnist1d, momentum=[0.5])
    assert first[0] > 0  # the counter sees the sweep's compilations
    with count_compilations() as again:
        res = sweep(config, seeds=[3], learning_rates=[0.01, 0.03], data=small_mnist1d, momentum=[0.8])
    assert again[0] == 0, "new hyperparameter values must reuse the compiled program"
    assert res.grid[1] == {"seed": 3, "learning_rate": 0.03, "momentum": 0.8}


def test_divergence_is_flagged_and_isolated(small_mnist1d):
    config = tiny_config()
    res = sweep(config, seeds=[0], learning_rates=[0.1, 1e4], data=small_mnist1d, momentum=[0.9])
    assert res.diverged.tolist() == [False, True]
    assert np.all(np.isfinite(jax.tree.leaves(jax.tree.map(lambda x: x[1], res.params))[0]))
    solo = train(config, 0, 0.1, data=small_mnist1d, momentum=0.9)
    assert _max_rel(jax.tree.map(lambda x: x[0], res.params), jax.tree.map(lambda x: x[0], solo.params)) < 1e-5


def test_same_config_is_bitwise_reproducible(small_mnist1d):
    config = tiny_config()
    a = sweep(config, seeds=[0, 1], learning_rates=[0.1], data=small_mnist1d)
    b = sweep(config, seeds=[0, 1], learning_rates=[0.1], data=small_mnist1d)
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state)):
        np.testing.assert_array_equal(x, y)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k])


def test_interrupted_then_resumed_equals_uninterrupted(small_mnist1d, tmp_path):
    config = tiny_config(checkpoint_every=1)
    full = sweep(config, seeds=[0, 1], learning_rates=[0.1], data=small_mnist1d)

    def preempt_after_two(info):  # a cluster's preemption notice arriving during chunk 2
        if info.chunk == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Preempted) as stopped:
        sweep(config, seeds=[0, 1], learning_rates=[0.1], data=small_mnist1d, checkpoint_dir=tmp_path,
              on_chunk=preempt_after_two)
    assert stopped.value.checkpoint.name == "chunk_000002"
    resumed = sweep(config, seeds=[0, 1], learning_rates=[0.1], data=small_mnist1d, checkpoint_dir=tmp_path,
                    resume=True)
    for x, y in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(x, y)
    for k in full.metrics:
        np.testing.assert_array_equal(full.metrics[k], resumed.metrics[k])


def test_random_label_fraction_is_a_sweepable_hyperparameter(small_mnist1d):
    config = tiny_config(steps=10, eval_every=10)
    res = sweep(config, seeds=[0], learning_rates=[0.1], data=small_mnist1d, random_label_fraction=[0.0, 0.5, 1.0])
    y = np.asarray(res.state.y_train)
    changed = (y != small_mnist1d.y_train[None]).mean(1)
    assert changed[0] == 0.0
    # randomized labels are uniform over 10 classes, so 1/10 of them keep their label by chance
    assert abs(changed[1] - 0.45) < 0.05 and abs(changed[2] - 0.9) < 0.05
    # nested corruption: one key draws the same random labels, so p=1.0 extends p=0.5's changes
    moved = y[1] != small_mnist1d.y_train
    np.testing.assert_array_equal(y[2][moved], y[1][moved])
    assert y.min() >= 0 and y.max() <= 9
