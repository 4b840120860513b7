"""The engine's epoch order: the default ``index_shuffle`` keeps every guarantee of ``permutation``."""

import jax
import numpy as np
import pytest

from dl_course.train import ConfigError, sweep, train
from dl_course.train.build import build_program
from dl_course.train.program import SHUFFLES, _epoch_order
from tests.compile_counter import count_compilations
from tests.train.conftest import tiny_config


def test_index_shuffle_sweep_equals_per_run_and_is_reproducible(small_mnist1d):
    config = tiny_config(shuffle="index_shuffle", steps=60)  # 60 steps of 64 from 600: 6 epochs
    res = sweep(config, seeds=[0, 1], learning_rates=[0.05, 0.2], data=small_mnist1d)
    again = sweep(config, seeds=[0, 1], learning_rates=[0.05, 0.2], data=small_mnist1d)
    for x, y in zip(jax.tree.leaves(res.state), jax.tree.leaves(again.state)):
        np.testing.assert_array_equal(x, y)
    for i in (0, 3):
        g = res.grid[i]
        solo = train(config, g["seed"], g["learning_rate"], data=small_mnist1d)
        np.testing.assert_allclose(res.metrics["train_loss"][i], solo.metrics["train_loss"][0], rtol=1e-5)
    assert res.metrics["train_loss"][:, -1].max() < res.metrics["train_loss"][:, 0].min()
    assert tiny_config().shuffle == "index_shuffle"  # the default
    other = sweep(tiny_config(shuffle="permutation", steps=60), seeds=[0, 1], learning_rates=[0.05, 0.2],
                  data=small_mnist1d)
    assert not np.array_equal(other.metrics["train_loss"], res.metrics["train_loss"])  # another order
    assert "index_shuffle" in res.conventions["batching"]


@pytest.mark.parametrize("name", sorted(SHUFFLES))
def test_every_epoch_visits_every_example_once(small_mnist1d, name):
    prog, _ = build_program(tiny_config(shuffle=name), small_mnist1d, None, None, [])
    key = jax.random.PRNGKey(5)
    orders = [np.asarray(_epoch_order(prog, key, e)) for e in range(3)]
    for o in orders:
        np.testing.assert_array_equal(np.sort(o), np.arange(small_mnist1d.n_train))
    assert not np.array_equal(orders[0], orders[1])


def test_unknown_shuffle_is_one_line_before_compiling(small_mnist1d):
    with count_compilations() as n, pytest.raises(ConfigError,
                                                  match="unknown shuffle 'sorted'; valid: index_shuffle, permutation"):
        sweep(tiny_config(shuffle="sorted"), seeds=[0], learning_rates=[0.1], data=small_mnist1d)
    assert n[0] == 0
