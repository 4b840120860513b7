"""The discrete-data bound of a diffusion model (``generative.discrete_bound``) against exact
discrete log-likelihoods, with exact scores of sharply peaked (point-mass) data.

The bound is ``log P(k) >= E_z[log p_eps(z) - sum_i log sum_j N(z_i; alpha x_j, std^2)]``; with the
exact score the PF-ODE gives ``log p_eps`` to the solver's tolerance, so the bound's gap is the
decoder's alone, which is small when the levels are resolved at ``eps`` (``ratio = 0.2``). Stated
tolerance: 0.02 bits/dim on the mean over test points (the decoder gap at ratio 0.2 is ~0.01 here,
Monte Carlo error of one ``z`` per point ~0.005); the bound must also not exceed the exact value by
more than 3 standard errors (it is a lower bound on log P).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.generative import (
    FactorizedMixture,
    GaussianMixture,
    get_sde,
    make_score_fn,
)
from dl_course.generative.discrete_bound import (
    decode_levels,
    decoder_time,
    discrete_bits_per_dim,
    discrete_log_likelihood_bound,
    level_values,
)

K, LOW, HIGH = 5, -1.0, 1.0


def _histogram_data(seed=0, d=6, n_train=400, n_test=300):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(K, 0.5), size=d)                     # peaked per-pixel level laws
    draw = lambda n: np.stack([rng.choice(K, n, p=p) for p in probs], axis=1)
    grid = np.asarray(level_values(K, LOW, HIGH), np.float64)
    return grid[draw(n_train)], grid[draw(n_test)]


def _bpd(score_fn, sde, x, ratio, key=1):
    eps = decoder_time(sde, K, LOW, HIGH, ratio)
    out = discrete_log_likelihood_bound(sde, score_fn, jnp.asarray(x, jnp.float32), jax.random.key(key), eps=eps,
                                        num_levels=K, low=LOW, high=HIGH, divergence="exact")
    assert bool(jnp.all(out.success)) and bool(jnp.all(jnp.isfinite(out.nfe)))
    return np.asarray(discrete_bits_per_dim(out.bound, x.shape[1]), np.float64)


@pytest.mark.parametrize("sde_name", ["vp", "ve"])
def test_independent_levels_bound_matches_the_histogram(sde_name):
    """Per-pixel point masses (the diffused histogram, ``FactorizedMixture.level_histogram``):
    bound within 0.02 bits/dim of the histogram's exact discrete NLL, and not below it."""
    x_train, x_test = _histogram_data()
    base = FactorizedMixture.level_histogram(x_train, K, LOW, HIGH)
    kk = np.round((x_test - LOW) / (HIGH - LOW) * (K - 1)).astype(int)
    exact = (-np.mean(np.sum(np.log(np.asarray(base.weights))[np.arange(x_test.shape[1]), kk], 1))
             / (x_test.shape[1] * np.log(2)))
    sde = get_sde(sde_name)
    bpd = _bpd(base.score_fn(sde), sde, x_test, 0.2)
    se = bpd.std(ddof=1) / np.sqrt(len(bpd))
    assert abs(bpd.mean() - exact) < 0.02, (bpd.mean(), exact)
    assert bpd.mean() > exact - 3 * se


def test_correlated_point_masses_bound_and_decoder_gap():
    """A correlated discrete law: 6 lattice points in 4 dims with unequal weights (a Gaussian mixture
    with zero covariances), exact score. The true posterior of the levels given z is almost one-hot
    (6 possible images) while the decoder's uniform per-pixel prior is not, so the decoder gap is
    the whole error: at ratio 0.1 (levels 10 std apart) it vanishes, within 0.02 bits/dim of
    -log2 P(k)/D; at ratio 0.2 it is a few hundredths (below 0.08, the bound still below the exact
    value); at ratio 0.6 (levels unresolved) it exceeds 0.1 -- so the check can fail."""
    rng = np.random.default_rng(3)
    d, m = 4, 6
    grid = np.asarray(level_values(K, LOW, HIGH), np.float64)
    points = grid[rng.choice(K, (m, d))]
    assert len({tuple(p) for p in points}) == m
    weights = rng.dirichlet(np.ones(m))
    mix = GaussianMixture.from_covs(jnp.asarray(weights, jnp.float32), jnp.asarray(points, jnp.float32),
                                    jnp.zeros((m, d, d), jnp.float32))
    idx = rng.choice(m, 200, p=weights)
    x = points[idx]
    exact = -np.mean(np.log(weights[idx])) / (d * np.log(2))
    sde = get_sde("vp")
    fine, mid, coarse = (_bpd(mix.score_fn(sde), sde, x, r) for r in (0.1, 0.2, 0.6))
    assert abs(fine.mean() - exact) < 0.02, (fine.mean(), exact)
    assert exact - 3 * mid.std(ddof=1) / np.sqrt(len(mid)) < mid.mean() < exact + 0.08, (mid.mean(), exact)
    assert coarse.mean() > exact + 0.1, (coarse.mean(), exact)


@pytest.mark.parametrize("sde_name", ["vp", "ve", "subvp"])
def test_decoder_time_hits_the_ratio(sde_name):
    sde = get_sde(sde_name)
    eps = decoder_time(sde, 17, -1.0, 1.0, 0.2)
    alpha, std = sde.marginal_coeffs(jnp.asarray(eps, jnp.float32))
    np.testing.assert_allclose(float(std / alpha), 0.2 * 2.0 / 16, rtol=1e-4)
    with pytest.raises(ValueError, match="decoder ratio"):
        decoder_time(sde, 17, -1.0, 1.0, 1e6)


def test_decode_levels_and_base_score_composition():
    sde = get_sde("vp")
    eps = decoder_time(sde, K, LOW, HIGH, 0.1)
    alpha, std = sde.marginal_coeffs(jnp.asarray(eps, jnp.float32))
    x_train, x_test = _histogram_data(n_test=50)
    z = alpha * jnp.asarray(x_test, jnp.float32) + std * 0.5 * jax.random.normal(jax.random.key(0), x_test.shape)
    np.testing.assert_allclose(np.asarray(decode_levels(z, alpha, std, K, LOW, HIGH)), x_test, atol=1e-6)
    base = FactorizedMixture.level_histogram(x_train, K, LOW, HIGH)
    apply_fn = lambda variables, x, t, train=False, rngs=None: variables["params"] * x
    t = jnp.full((50,), 0.3)
    plain = make_score_fn(apply_fn, 2.0, sde)(z, t)
    with_base = make_score_fn(apply_fn, 2.0, sde, base=base)(z, t)
    alpha = sde.marginal_coeffs(t)[0][:, None]
    np.testing.assert_allclose(np.asarray(with_base - alpha * plain), np.asarray(base.score(sde, z, t)),
                               rtol=1e-5, atol=1e-5)
    squared = make_score_fn(apply_fn, 2.0, sde, base=base, correction_scale="alpha2")(z, t)
    np.testing.assert_allclose(np.asarray(squared - alpha ** 2 * plain), np.asarray(base.score(sde, z, t)),
                               rtol=1e-5, atol=1e-5)
    bounded = make_score_fn(apply_fn, 2.0, sde, base=base, correction_bound=3.0)(z, t)
    std = sde.marginal_coeffs(t)[1][:, None]
    np.testing.assert_allclose(np.asarray(bounded - base.score(sde, z, t)),
                               np.asarray(-alpha * 3.0 * jnp.tanh(2.0 * z / 3.0) / std), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="correction_scale"):
        make_score_fn(apply_fn, 2.0, sde, base=base, correction_scale="alpha3")
