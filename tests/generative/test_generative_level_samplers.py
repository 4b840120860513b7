"""The final denoising step of the level samplers against exact posterior means, and the per-image
bound's draws: the exact-divergence bound equal to the Hutchinson bound's mean within its standard error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.generative import (
    VPSDE,
    FactorizedMixture,
    GaussianMixture,
    tweedie_denoise,
)
from dl_course.generative.discrete_bound import decoder_time, discrete_bound_draws
from dl_course.generative.level_models import level_score_model


def _mixture_posterior_mean(mix, sde, x, t):
    """E[x0 | x_t] of a Gaussian mixture by components: responsibilities of N(alpha mu_k, alpha^2 C_k
    + std^2 I) times the per-component Gaussian posterior mean mu_k + alpha C_k S_k^-1 (x - alpha mu_k)."""
    alpha, std = (float(v) for v in sde.marginal_coeffs(jnp.asarray(t, jnp.float64)))
    covs, d = np.asarray(mix.covs), x.shape[1]
    logs, means = [], []
    for w, mu, c in zip(np.asarray(mix.weights), np.asarray(mix.means), covs):
        s = alpha ** 2 * c + std ** 2 * np.eye(d)
        diff = x - alpha * mu
        sol = np.linalg.solve(s, diff.T).T
        logs.append(np.log(w) - 0.5 * np.sum(diff * sol, 1) - 0.5 * np.linalg.slogdet(s)[1])
        means.append(mu + alpha * sol @ c.T)
    logs = np.stack(logs)
    r = np.exp(logs - logs.max(0))
    r = r / r.sum(0)
    return np.einsum("kn,knd->nd", r, np.stack(means))


def test_tweedie_step_is_the_exact_posterior_mean_of_a_gaussian_mixture():
    """float64: (x + std^2 s(x, t)) / alpha with the mixture's exact score equals the closed-form
    E[x0 | x_t] of a 3-component, 2-D mixture with full covariances (1e-9 relative) at three times."""
    with jax.enable_x64(True):
        sde = VPSDE()
        covs = np.array([[[0.3, 0.1], [0.1, 0.2]], [[0.05, 0.0], [0.0, 0.4]], [[0.2, -0.15], [-0.15, 0.2]]])
        mix = GaussianMixture.from_covs(np.array([0.5, 0.3, 0.2]),
                                        np.array([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.5]]), covs)
        x = jax.random.normal(jax.random.key(0), (64, 2), jnp.float64) * 1.5
        for t in (0.01, 0.2, 0.7):
            got = np.asarray(tweedie_denoise(sde, mix.score_fn(sde), x, t))
            np.testing.assert_allclose(got, _mixture_posterior_mean(mix, sde, np.asarray(x), t), rtol=1e-9, atol=1e-12)


def _histogram_model(sde, rng, levels=5, d=6):
    x_train = np.round(rng.uniform(size=(40, d)) ** 2 * (levels - 1)) / (levels - 1) * 2 - 1   # grid in [-1, 1]
    zero_net = lambda variables, x, t, train=False, rngs=None: jnp.zeros_like(x)
    return level_score_model(zero_net, sde, x_train, levels, -1.0, 1.0, decoder_ratio=0.2), x_train


def test_level_sampler_denoising_step_is_the_posterior_mean_of_the_levels():
    """With a zero network the score is the diffused per-pixel histogram's (point masses w_ik on the
    levels x_k), so E[x0 | z] = sum_k P(k | z_i) x_k, P(k | z) ∝ w_ik N(z; alpha x_k, std^2): Tweedie's step
    matches it (float64, 1e-9) at a stop time where the posterior is far from one-hot; the sampler's
    denoised images are those means rounded to the nearest level."""
    with jax.enable_x64(True):
        sde = VPSDE()
        lm, _ = _histogram_model(sde, np.random.default_rng(0))
        stop = decoder_time(sde, 5, -1.0, 1.0, ratio=1.0)
        alpha, std = (float(v) for v in sde.marginal_coeffs(jnp.asarray(stop)))
        z = jax.random.normal(jax.random.key(1), (32, 6), jnp.float64)
        levels = np.linspace(-1.0, 1.0, 5)
        logw = (np.log(np.asarray(lm.base.weights))[None]
                - 0.5 * ((np.asarray(z)[..., None] - alpha * levels) / std) ** 2)
        post = np.exp(logw - logw.max(-1, keepdims=True))
        exact = np.sum(post / post.sum(-1, keepdims=True) * levels, -1)
        got = np.asarray(tweedie_denoise(sde, lm.score_fn(None), z, stop))
        np.testing.assert_allclose(got, exact, rtol=1e-9, atol=1e-12)
        assert np.ptp(got - np.round(got)) > 0.1          # not already on the grid: the check has teeth
        imgs = np.asarray(lm.samples(None, jax.random.key(2), (16, 6), method="euler_maruyama", num_steps=50,
                                     denoise=True, stop_time=stop))
        assert set(np.round(imgs.ravel() * 2 + 2, 6)) <= set(range(5))


def test_samples_with_stop_ratio_run_under_jit():
    """``samples(stop_ratio=r)`` inside ``jax.jit`` (r a Python number) gives the eager samples with
    the equivalent ``stop_time`` (the decoding time is computed on the host while tracing); a traced
    ratio is one clear error."""
    sde = VPSDE()
    lm, _ = _histogram_model(sde, np.random.default_rng(0))
    kw = dict(method="euler_maruyama", num_steps=20, denoise=True)
    jitted = jax.jit(lambda key: lm.samples(None, key, (8, 6), stop_ratio=1.0, **kw))
    eager = lm.samples(None, jax.random.key(3), (8, 6), stop_time=decoder_time(sde, 5, -1.0, 1.0, 1.0), **kw)
    np.testing.assert_allclose(np.asarray(jitted(jax.random.key(3))), np.asarray(eager), atol=1e-6)
    with pytest.raises(TypeError, match="decoder ratio must be a concrete number"):
        jax.jit(lambda r: lm.samples(None, jax.random.key(3), (8, 6), stop_ratio=r, **kw))(1.0)


def test_exact_divergence_bound_is_the_mean_of_the_hutchinson_bound():
    """A correlated score (the histogram model rotated) so that Hutchinson's Rademacher estimate is
    noisy: with the same dequantisation draws, the exact-divergence bound equals the mean over 24
    Hutchinson draws within 3 standard errors per image (and the Hutchinson draws do vary)."""
    sde = VPSDE()
    rng = np.random.default_rng(0)
    lm, x_train = _histogram_model(sde, rng, d=4)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    rotated = FactorizedMixture(lm.base.weights, lm.base.means, lm.base.stds + 0.05, jnp.asarray(q, jnp.float32))
    score_fn = rotated.score_fn(sde)
    x = jnp.asarray(x_train[:6], jnp.float32)
    opts = dict(eps=lm.eps, num_levels=5, low=-1.0, high=1.0, rtol=1e-5, atol=1e-5)
    # the same key for both: fold_in(key, r) splits into the same z draws; only the probes differ
    hutch = discrete_bound_draws(sde, score_fn, x, jax.random.key(3), num_draws=24, divergence="hutchinson", **opts)
    exact = discrete_bound_draws(sde, score_fn, x, jax.random.key(3), num_draws=24, divergence="exact", **opts)
    diff = np.asarray(hutch.bound - exact.bound)                                  # probe noise only
    se = diff.std(0, ddof=1) / np.sqrt(24)
    assert np.all(diff.std(0) > 1e-3), diff.std(0)
    assert np.all(np.abs(diff.mean(0)) < 3 * se + 1e-4), (diff.mean(0), se)
    assert np.all(np.abs(np.asarray(hutch.mean - exact.mean)) < 3 * np.asarray(hutch.stderr) + 1e-4)
