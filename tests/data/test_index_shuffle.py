"""The sort-free index shuffle: a bijection of [0, n), statistically indistinguishable from a
uniform permutation at the sizes the engine uses (and the tests can tell when it is not)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from dl_course.data.index_shuffle import index_shuffle, shuffled_range


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 16, 17, 100, 1000, 4000, 4097, 65537])
def test_is_a_bijection_of_the_range(n):
    for seed in (0, 1):
        order = np.asarray(shuffled_range(jax.random.PRNGKey(seed), n))
        assert order.dtype == np.int32
        np.testing.assert_array_equal(np.sort(order), np.arange(n))


def test_elementwise_deterministic_and_keyed():
    key = jax.random.PRNGKey(7)
    full = np.asarray(shuffled_range(key, 1000))
    idx = jnp.asarray([999, 0, 500, 3], jnp.int32)
    np.testing.assert_array_equal(np.asarray(index_shuffle(key, idx, 1000)), full[np.asarray(idx)])
    np.testing.assert_array_equal(np.asarray(shuffled_range(key, 1000)), full)
    assert not np.array_equal(np.asarray(shuffled_range(jax.random.PRNGKey(8), 1000)), full)
    # vmapped over keys = one key at a time
    keys = jax.random.split(key, 3)
    batched = np.asarray(jax.vmap(lambda k: shuffled_range(k, 1000))(keys))
    for i in range(3):
        np.testing.assert_array_equal(batched[i], np.asarray(shuffled_range(keys[i], 1000)))


def _order_counts(rounds, draws=24000, n=5):
    keys = jax.random.split(jax.random.PRNGKey(0), draws)
    orders = np.asarray(jax.vmap(lambda k: index_shuffle(k, jnp.arange(n), n, rounds))(keys))
    index = {p: i for i, p in enumerate(itertools.permutations(range(n)))}
    return np.bincount([index[tuple(o)] for o in orders.tolist()], minlength=len(index))


def test_all_orders_of_five_items_are_equally_likely():
    counts = _order_counts(rounds=8)
    # 120 orders, 200 expected each: chi-square with 119 degrees of freedom; p < 1e-4 fails
    # (a fixed key set, so the test is deterministic; a uniform shuffle passes with prob. 1 - 1e-4).
    chi2 = float(np.sum((counts - 200.0) ** 2 / 200.0))
    assert counts.min() > 0
    assert chi2 < stats.chi2.ppf(1 - 1e-4, 119), chi2
    # The test has power: two Feistel rounds are far from uniform on this domain.
    weak = _order_counts(rounds=2)
    assert float(np.sum((weak - 200.0) ** 2 / 200.0)) > 10 * stats.chi2.ppf(1 - 1e-4, 119)


def test_positions_uniform_and_orders_of_different_keys_uncorrelated_at_4000():
    n, draws = 4000, 2000
    keys = jax.vmap(lambda e: jax.random.fold_in(jax.random.PRNGKey(3), e))(jnp.arange(draws))
    orders = np.asarray(jax.vmap(lambda k: shuffled_range(k, n))(keys))
    positions = np.argsort(orders, axis=1)  # position of each item in each order
    for item in (0, 1, 2047, 3999):
        hist = np.bincount(positions[:, item] * 20 // n, minlength=20)
        chi2 = float(np.sum((hist - draws / 20) ** 2 / (draws / 20)))
        assert chi2 < stats.chi2.ppf(1 - 1e-4, 19), (item, chi2)
    # consecutive epochs' orders (keys fold_in(k, e), fold_in(k, e + 1)): Spearman rank correlation
    # of independent uniform permutations has sd 1/sqrt(n - 1) = 0.016; 5 sd.
    rho = [stats.spearmanr(orders[e], orders[e + 1])[0] for e in range(50)]
    assert np.max(np.abs(rho)) < 5 / np.sqrt(n - 1), np.max(np.abs(rho))
    # neighbouring items land at unrelated positions (no locality left by the network)
    gap = np.abs(positions[:, 1:] - positions[:, :-1]).mean()
    assert abs(gap - n / 3) < 0.01 * n / 3, gap  # E|U - V| = n/3 for independent uniform positions


def test_rejects_bad_domain():
    with pytest.raises(ValueError, match="n >= 1"):
        index_shuffle(jax.random.PRNGKey(0), jnp.arange(1), 0)
