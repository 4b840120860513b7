"""Divergence checked per interval, replayed per step: the same frozen states as a per-step guard.

The chunk program applies every step unguarded and checks finiteness once per interval
(``program.settle_interval``); a run that went non-finite is replayed from its anchor with the
per-step guard (``exact_stop.replay_to_target``). Reference: the per-step guarded step
(``train_step(guard=True)``) in a Python loop, one run at a time — the contract "a diverged run
is frozen at its last finite state".
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.generative.ema import ema_hook
from dl_course.train import sweep
from dl_course.train.build import build_program
from dl_course.train.program import init_run, train_step
from dl_course.train.sweep import _host_data
from tests.compile_counter import count_compilations
from tests.train.conftest import tiny_config

# Momentum 0.9, width 32, 40 steps: the per-step guard first rejects a step of lr 30 at step 16,
# of lr 50 at step 13 — both inside the second interval of 10 steps, not at its start or end;
# lr 0.1 never diverges.
LRS = [0.1, 30.0, 50.0]


def _guarded_reference(config, data, lr, hooks):
    """One run, one jitted guarded step per Python iteration; returns the state and the first
    step whose update was rejected."""
    prog, _ = build_program(config, data, None, hooks, ["momentum"])
    dev = {k: jnp.asarray(v) for k, v in _host_data(data).items()}
    state = jax.jit(lambda hp: init_run(prog, jnp.uint32(0), hp, dev))(
        {"learning_rate": jnp.float32(lr), "momentum": jnp.float32(0.9)})
    step = jax.jit(lambda s: train_step(prog, s, dev, s.step)[0])
    first = None
    for t in range(int(config.steps)):
        state = step(state)
        if first is None and bool(state.diverged):
            first = t + 1
    return state, first


@pytest.fixture(scope="module")
def diverging_grid(small_mnist1d):
    config = tiny_config()
    hooks = {"ema": ema_hook(0.8)}
    return config, hooks, sweep(config, seeds=[0], learning_rates=LRS, data=small_mnist1d, momentum=[0.9],
                                hooks=hooks)


def test_a_run_diverging_inside_an_interval_is_frozen_at_its_last_finite_state(diverging_grid, small_mnist1d):
    config, hooks, res = diverging_grid
    assert res.diverged.tolist() == [False, True, True]
    assert np.all(np.asarray(res.state.step) == config.steps)  # the step counter runs on while frozen
    for i, lr in enumerate(LRS):
        ref, first = _guarded_reference(config, small_mnist1d, lr, hooks)
        assert bool(ref.diverged) == bool(res.diverged[i])
        if i:
            assert 11 < first < 20, first  # the premise: the divergence lies inside an interval
        mine = jax.tree.map(lambda x: x[i], (res.params, res.state.opt_state, res.state.extras))
        theirs = (ref.params, ref.opt_state, ref.extras)
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs)):
            assert np.all(np.isfinite(a))
            # vmapped vs unbatched float32 matmuls sum in different orders: 1e-5 relative
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(b))))


def test_evaluation_points_after_a_divergence_show_the_frozen_state(diverging_grid):
    _, _, res = diverging_grid
    # [run, point] at steps 0, 10, 20, 30, 40. The last finite state's loss may itself be inf/NaN
    # (the next step was rejected because of it), so rows compare NaN-equal; accuracies are finite.
    for name in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        v = res.metrics[name]
        assert np.all(np.isfinite(v[:, :2])) and np.all(np.isfinite(v[0]))
        for i in (1, 2):  # diverged inside (10, 20]: from point 2 on, one frozen state's evaluation
            np.testing.assert_array_equal(v[i, 2:], np.full(3, v[i, 2]))
    assert np.all(np.isfinite(res.metrics["test_accuracy"]))
    assert np.all(res.metrics["train_loss"][1:, 2] != res.metrics["train_loss"][1:, 1])


def test_a_grid_without_divergence_never_compiles_the_replay(small_mnist1d):
    config = tiny_config()
    sweep(config, seeds=[0], learning_rates=[0.1], data=small_mnist1d, momentum=[0.9])  # warm the cache
    with count_compilations() as n:
        sweep(config, seeds=[1], learning_rates=[0.2], data=small_mnist1d, momentum=[0.9])
    assert n[0] == 0
    with count_compilations() as n:
        res = sweep(config, seeds=[1], learning_rates=[1e4], data=small_mnist1d, momentum=[0.9])
    assert res.diverged.tolist() == [True] and n[0] >= 1  # the replay program, compiled on demand


def test_divergence_beside_target_stops_and_compaction(small_mnist1d, monkeypatch):
    """Runs that converge (exact stop), runs that diverge inside an interval and runs that do
    neither, in one compacted grid: the converged ones stop where they stop without the diverging
    ones beside them; the diverged ones end in the guarded reference's frozen state."""
    from dl_course.train import compaction as compaction_lib

    monkeypatch.setattr(compaction_lib, "PAYBACK", 0.0)  # compact whenever the batch can halve
    config = tiny_config(steps=60, eval_every=10, chunk_evals=1, target_train_loss=1.6, compact_runs=True)
    calm = sweep(config, seeds=[0], learning_rates=[0.002, 0.05, 0.1], data=small_mnist1d, momentum=[0.9])
    res = sweep(config, seeds=[0], learning_rates=[0.002, 0.05, 0.1, 30.0, 50.0], data=small_mnist1d, momentum=[0.9])
    assert res.diverged.tolist() == [False, False, False, True, True]
    assert calm.converged.tolist() == [False, True, True] and res.timing["compactions"]
    np.testing.assert_array_equal(res.steps_to_target[:3], calm.steps_to_target)
    for a, b in zip(jax.tree.leaves(jax.tree.map(lambda x: x[:3], res.params)), jax.tree.leaves(calm.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for i, lr in ((3, 30.0), (4, 50.0)):
        ref, _ = _guarded_reference(config, small_mnist1d, lr, None)
        assert int(res.steps_to_target[i]) == -1 and not res.converged[i]
        for a, b in zip(jax.tree.leaves(jax.tree.map(lambda x: x[i], res.params)), jax.tree.leaves(ref.params)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(b))))
