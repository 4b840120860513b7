"""The target-loss stop: frozen runs, equality with a solo run of exactly steps_to_target steps,
early exit, runs that never reach it, and bad targets rejected before compiling."""

import re

import jax
import numpy as np
import pytest

from dl_course.train import ConfigError, sweep, train
from tests.train.conftest import tiny_config


def _rel(a, b):
    return max(float(np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-12))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_converged_run_equals_solo_run_of_steps_to_target_and_stays_frozen(small_mnist1d):
    config = tiny_config(steps=200, eval_every=10, chunk_evals=2, target_train_loss=1.2)
    res = sweep(config, seeds=[0], learning_rates=[0.02, 0.3, 1e-5], data=small_mnist1d, momentum=[0.9])
    slow, fast, never = 0, 1, 2
    assert res.converged.tolist() == [True, True, False]
    assert res.steps_to_target[never] == -1 and not res.diverged.any()
    assert 0 < res.steps_to_target[fast] < res.steps_to_target[slow]
    loss = res.metrics["train_loss"]
    for i in (slow, fast):
        k = int(res.steps_to_target[i]) // 10
        assert loss[i, k] <= 1.2 < loss[i, k - 1]  # the FIRST evaluation at or below the target
        # frozen from then on: every later evaluation repeats the same loss
        np.testing.assert_array_equal(loss[i, k:], loss[i, k])
    # the slow run kept training while the fast one was frozen (same program)
    assert loss[slow, res.steps_to_target[fast] // 10 + 1] < loss[slow, res.steps_to_target[fast] // 10 - 1]
    for i in (slow, fast):
        solo_config = tiny_config(steps=int(res.steps_to_target[i]), eval_every=10, chunk_evals=1)
        solo = train(solo_config, 0, res.grid[i]["learning_rate"], data=small_mnist1d, momentum=0.9)
        # float32; vmapped and unbatched matmuls may sum in different orders: 1e-5 relative
        assert _rel(jax.tree.map(lambda x: x[i], res.params), jax.tree.map(lambda x: x[0], solo.params)) < 1e-5
    # train() applies the same stop
    alone = train(config, 0, 0.3, data=small_mnist1d, momentum=0.9)
    assert alone.steps_to_target.tolist() == [res.steps_to_target[fast]]


def test_sweep_ends_early_when_every_run_has_converged(small_mnist1d):
    config = tiny_config(steps=400, eval_every=10, chunk_evals=2, target_train_loss=1.5)
    res = sweep(config, seeds=[0, 1], learning_rates=[0.3], data=small_mnist1d, momentum=[0.9])
    assert res.converged.all()
    assert res.steps[-1] < 400 and res.steps[-1] >= res.steps_to_target.max()
    assert res.metrics["train_loss"].shape[1] == len(res.steps)
    assert res.timing["total_s"] > 0


def test_accuracy_target_and_bad_targets(small_mnist1d):
    config = tiny_config(steps=100, eval_every=10, target_train_accuracy=0.5)
    res = sweep(config, seeds=[0], learning_rates=[0.3], data=small_mnist1d, momentum=[0.9])
    k = int(res.steps_to_target[0]) // 10
    assert res.metrics["train_accuracy"][0, k] >= 0.5 > res.metrics["train_accuracy"][0, k - 1]
    for key, value, message in [("target_train_loss", -0.1, "target_train_loss must be >= 0"),
                                ("target_train_accuracy", 1.5, "target_train_accuracy must be in [0, 1]")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            sweep(tiny_config(**{key: value}), seeds=[0], learning_rates=[0.1], data=small_mnist1d)
