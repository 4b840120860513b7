"""The exact target-loss stop: the first step at the target (not the evaluation point after it),
the final loss within [0.98, 1] x target, equality with a solo run of exactly steps_to_target
steps, agreement with a per-step check, early exit, runs that never reach it, no recompilation
when the target changes, and bad targets rejected before compiling."""

import re

import jax
import numpy as np
import pytest

from dl_course.train import ConfigError, sweep, train
from tests.train.conftest import tiny_config


def _rel(a, b):
    return max(float(np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-12))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _per_run(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def test_converged_run_stops_at_the_first_step_at_the_target_and_equals_a_solo_run(small_mnist1d):
    config = tiny_config(steps=200, eval_every=10, chunk_evals=2, target_train_loss=1.2)
    res = sweep(config, seeds=[0], learning_rates=[0.02, 0.3, 1e-5], data=small_mnist1d, momentum=[0.9])
    slow, fast, never = 0, 1, 2
    assert res.converged.tolist() == [True, True, False]
    assert res.steps_to_target[never] == -1 and not res.diverged.any()
    assert 0 < res.steps_to_target[fast] < res.steps_to_target[slow]
    loss = res.metrics["train_loss"]
    for i in (slow, fast):
        s = int(res.steps_to_target[i])
        k = -(-s // 10)  # the evaluation point that saw the target
        assert s % 10 != 0 or k * 10 == s
        assert 0.98 * 1.2 <= loss[i, -1] <= 1.2  # the exact stop: within 2% below the target
        assert loss[i, k - 1] > 1.2  # the evaluation before the stop was above it
        np.testing.assert_array_equal(loss[i, k:], loss[i, -1])  # frozen from the stop on
    # the slow run kept training while the fast one was frozen (same program)
    k_fast = -(-int(res.steps_to_target[fast]) // 10)
    assert loss[slow, k_fast + 1] < loss[slow, k_fast - 1]
    for i in (slow, fast):
        s = int(res.steps_to_target[i])
        assert res.step_fraction[i] == 1.0
        solo = train(tiny_config(steps=s, eval_every=s), 0, res.grid[i]["learning_rate"], data=small_mnist1d,
                     momentum=0.9)
        # float32; vmapped and unbatched matmuls may sum in different orders: 1e-5 relative
        assert _rel(_per_run(res.params, i), _per_run(solo.params, 0)) < 1e-5
        assert abs(solo.metrics["train_loss"][0, -1] - loss[i, -1]) < 1e-5 * 1.2
        # one step fewer is still above the target: s is the first step in its interval
        before = train(tiny_config(steps=s - 1, eval_every=s - 1), 0, res.grid[i]["learning_rate"],
                       data=small_mnist1d, momentum=0.9)
        assert before.metrics["train_loss"][0, -1] > 1.2
    # train() applies the same stop
    alone = train(config, 0, 0.3, data=small_mnist1d, momentum=0.9)
    assert alone.steps_to_target.tolist() == [res.steps_to_target[fast]]
    assert abs(alone.metrics["train_loss"][0, -1] - loss[fast, -1]) < 1e-5


def test_exact_stop_on_a_fresh_grid_is_within_two_percent_and_shrinks_an_overshooting_step(small_mnist1d):
    """Plain SGD, no momentum, batch 32, a grid of rates whose last step often jumps past the band:
    every converged run ends in [0.98, 1] x target; where a whole step would have ended below the
    band only part of it is applied (step_fraction < 1), and the state is the interpolation
    between the solo run's last two steps."""
    target = 0.9
    config = tiny_config(steps=300, eval_every=25, chunk_evals=3, batch_size=32, target_train_loss=target)
    res = sweep(config, seeds=[3, 4], learning_rates=[0.5, 1.0], data=small_mnist1d, momentum=[0.0])
    final = res.metrics["train_loss"][:, -1]
    assert res.converged.all()
    assert np.all((final[res.converged] >= 0.98 * target) & (final[res.converged] <= target)), final
    partial = np.flatnonzero(res.converged & (res.step_fraction < 1))
    assert partial.size >= 1, res.step_fraction  # the grid exercises the band
    i = int(partial[0])
    s, a = int(res.steps_to_target[i]), float(res.step_fraction[i])
    run = res.grid[i]
    full = train(tiny_config(steps=s, eval_every=s, batch_size=32), run["seed"], run["learning_rate"],
                 data=small_mnist1d, momentum=0.0)
    prev = train(tiny_config(steps=s - 1, eval_every=s - 1, batch_size=32), run["seed"], run["learning_rate"],
                 data=small_mnist1d, momentum=0.0)
    assert full.metrics["train_loss"][0, -1] < 0.98 * target < target < prev.metrics["train_loss"][0, -1]
    expected = jax.tree.map(lambda w0, w1: w0 + a * (w1 - w0), _per_run(prev.params, 0), _per_run(full.params, 0))
    assert _rel(_per_run(res.params, i), expected) < 1e-5


def test_exact_stop_equals_checking_every_step_when_the_loss_only_crosses_once(small_mnist1d):
    """Checking the target after every step (eval_every = 1) is the ground truth; evaluating every
    10 steps and replaying finds the same step and state for runs whose loss does not dip below
    the target and come back between two evaluations (full-batch GD at small rates)."""
    kw = dict(steps=120, batch_size=0, target_train_loss=1.5)
    coarse = sweep(tiny_config(eval_every=20, chunk_evals=2, **kw), seeds=[0, 1], learning_rates=[0.3, 0.5],
                   data=small_mnist1d, momentum=[0.5])
    fine = sweep(tiny_config(eval_every=1, chunk_evals=30, **kw), seeds=[0, 1], learning_rates=[0.3, 0.5],
                 data=small_mnist1d, momentum=[0.5])
    assert coarse.converged.all() and fine.converged.all()
    assert coarse.steps_to_target.tolist() == fine.steps_to_target.tolist()
    assert np.all(coarse.steps_to_target % 20 != 0)  # the stops fall between evaluation points
    assert _rel(coarse.params, fine.params) < 1e-5
    np.testing.assert_allclose(coarse.step_fraction, fine.step_fraction, rtol=1e-3)


def test_target_change_does_not_recompile(small_mnist1d):
    from tests.compile_counter import count_compilations

    config = tiny_config(steps=100, eval_every=10, target_train_loss=1.5)
    sweep(config, seeds=[0], learning_rates=[0.3], data=small_mnist1d, momentum=[0.9])
    config.target_train_loss = 1.3
    with count_compilations() as n:
        res = sweep(config, seeds=[1], learning_rates=[0.2], data=small_mnist1d, momentum=[0.9])
    assert res.converged.all() and n[0] == 0


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
    k = -(-int(res.steps_to_target[0]) // 10)
    assert res.metrics["train_accuracy"][0, -1] >= 0.5 > res.metrics["train_accuracy"][0, k - 1]
    assert res.step_fraction[0] == 1.0  # no band for an accuracy target
    for key, value, message in [("target_train_loss", -0.1, "target_train_loss must be >= 0"),
                                ("target_train_accuracy", 1.5, "target_train_accuracy must be in [0, 1]")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            sweep(tiny_config(**{key: value}), seeds=[0], learning_rates=[0.1], data=small_mnist1d)
