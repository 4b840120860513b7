"""Compaction (stopped runs leave the vmapped program) and the vmapped dropout rate: same results
as the uncompacted sweep / the per-run program, fewer computed run-steps, bounded compilations,
no recompilation when the dropout rates change, bad use rejected before compiling."""

import jax
import numpy as np
import pytest

from dl_course.train import ConfigError, sweep, train
from dl_course.train import compaction as compaction_lib
from tests.compile_counter import count_compilations
from tests.train.conftest import tiny_config


def _max_rel(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))) / (np.max(np.abs(np.asarray(y))) + 1e-12))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_bucket_sizes_are_powers_of_two_times_the_device_count():
    assert [compaction_lib.bucket(k, 1) for k in (1, 2, 3, 5, 8, 9)] == [1, 2, 4, 8, 8, 16]
    assert [compaction_lib.bucket(k, 2) for k in (1, 3, 5, 9)] == [2, 4, 8, 16]


def test_compacted_sweep_equals_the_uncompacted_one(small_mnist1d, monkeypatch):
    monkeypatch.setattr(compaction_lib, "PAYBACK", 0.0)  # compact whenever the batch can halve
    # small, stable learning rates: runs stop between step 30 and 230 or never; float32 round-off
    # (another batch size may block a matmul differently) stays at its size in stable dynamics
    config = tiny_config(steps=240, eval_every=10, chunk_evals=2, target_train_loss=1.6)
    lrs = [0.002, 0.05, 0.1, 0.2]
    ref = sweep(config, seeds=[0, 1], learning_rates=lrs, data=small_mnist1d, momentum=[0.0, 0.5])
    config.compact_runs = True
    res = sweep(config, seeds=[0, 1], learning_rates=lrs, data=small_mnist1d, momentum=[0.0, 0.5])
    assert res.timing["compactions"] and res.timing["compactions"][0][-1] < len(lrs) * 4
    assert res.timing["run_steps"] < ref.timing["run_steps"]
    assert res.timing["active_run_steps"] == ref.timing["active_run_steps"]
    assert 0 < ref.converged.sum() < len(ref.grid)  # some runs stop, some never: a real compaction
    np.testing.assert_array_equal(res.steps_to_target, ref.steps_to_target)
    np.testing.assert_array_equal(res.converged, ref.converged)
    assert _max_rel(res.params, ref.params) < 1e-5
    assert _max_rel(res.state.opt_state, ref.state.opt_state) < 1e-5
    for k in ref.metrics:  # runs that left the batch repeat their last evaluation, as frozen runs do
        np.testing.assert_allclose(res.metrics[k], ref.metrics[k], rtol=1e-5, atol=1e-6)


def test_compaction_compiles_each_size_once(small_mnist1d, monkeypatch):
    monkeypatch.setattr(compaction_lib, "PAYBACK", 0.0)
    config = tiny_config(steps=240, eval_every=10, chunk_evals=2, target_train_loss=1.6, compact_runs=True)
    kw = dict(seeds=[0, 1], learning_rates=[0.002, 0.05, 0.1, 0.2], data=small_mnist1d)
    first = sweep(config, momentum=[0.0, 0.5], **kw)
    with count_compilations() as n:
        sweep(config, momentum=[0.0, 0.5], **kw)
    assert n[0] == 0  # every size it compacts to is compiled once and cached
    with count_compilations() as n:
        again = sweep(config, momentum=[0.1, 0.6], **kw)  # other values stop at other times
    new_sizes = set(again.timing["compactions"][0]) - set(first.timing["compactions"][0])
    assert n[0] == len(new_sizes)  # only a batch size not seen before compiles (its chunk program)


def test_vmapped_dropout_rate_equals_the_per_run_program_and_does_not_recompile(small_mnist1d):
    config = tiny_config(steps=40, eval_every=20)
    res = sweep(config, seeds=[0], learning_rates=[0.1], data=small_mnist1d, dropout_rate=[0.0, 0.5])
    none = sweep(config, seeds=[0], learning_rates=[0.1], data=small_mnist1d)
    # rate 0 is the identity: the same run as without dropout
    assert _max_rel(jax.tree.map(lambda x: x[0], res.params), jax.tree.map(lambda x: x[0], none.params)) < 1e-6
    # rate 0.5 trains a different net, equal to the unbatched per-run program
    solo = train(config, 0, 0.1, data=small_mnist1d, dropout_rate=0.5)
    assert _max_rel(jax.tree.map(lambda x: x[1], res.params), jax.tree.map(lambda x: x[0], solo.params)) < 1e-5
    assert _max_rel(jax.tree.map(lambda x: x[1], res.params), jax.tree.map(lambda x: x[0], none.params)) > 1e-3
    with count_compilations() as n:
        sweep(config, seeds=[0], learning_rates=[0.1], data=small_mnist1d, dropout_rate=[0.1, 0.25])
    assert n[0] == 0


def test_traced_dropout_keeps_units_with_probability_one_minus_rate():
    import flax.linen as nn

    from dl_course.models.mlp import traced_dropout

    class Drop(nn.Module):
        @nn.compact
        def __call__(self, x, rate):
            return traced_dropout(self, x, rate, True)

    x = np.ones((200, 500), np.float32)
    y = Drop().apply({}, x, 0.3, rngs={"dropout": jax.random.PRNGKey(0)})
    kept = np.asarray(y) > 0
    # 100,000 Bernoulli(0.7) draws: standard error 0.0014, 5 of it = 0.007
    assert abs(kept.mean() - 0.7) < 0.007
    np.testing.assert_allclose(np.asarray(y)[kept], 1 / 0.7, rtol=1e-6)  # inverted scaling keeps the mean


def test_dropout_rate_grid_key_needs_a_model_that_takes_it(small_mnist1d):
    config = tiny_config(model="linear")
    config.model_options = {}
    with pytest.raises(ConfigError, match="cannot sweep dropout_rate with model 'linear'"):
        sweep(config, seeds=[0], learning_rates=[0.1], data=small_mnist1d, dropout_rate=[0.0, 0.5])
