"""VAE: the linear-Gaussian VAE against probabilistic PCA in closed form (Tipping & Bishop 1999), the
ordering ELBO <= IWAE-k <= IWAE-K on a briefly trained digits VAE (Burda et al. 2016), the Task."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats

from dl_course.generative.vae import (
    VAE,
    elbo,
    iwae_bound,
    kl_to_standard_normal,
    log_importance_weights,
    make_task,
    sample,
)

D, Q, N = 5, 2, 500


def _ppca_problem():
    """Data from a rank-2 model plus isotropic noise in R^5, and the PPCA MLE: mean, W = U_q (L_q -
    s^2 I)^(1/2), s^2 = mean of the 3 smallest eigenvalues of the biased sample covariance, and the
    exact log-likelihood of every example under N(mean, W W^T + s^2 I) (scipy)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, Q)) @ rng.normal(size=(Q, D)) * 1.5 + 0.3 * rng.normal(size=(N, D)) + 1.0
    mean = x.mean(0)
    lam, u = np.linalg.eigh(np.cov(x, rowvar=False, bias=True))
    lam, u = lam[::-1], u[:, ::-1]
    s2 = lam[Q:].mean()
    w = u[:, :Q] * np.sqrt(lam[:Q] - s2)
    log_p = scipy.stats.multivariate_normal(mean, w @ w.T + s2 * np.eye(D)).logpdf(x)
    return x, mean, w, s2, lam[:Q], log_p


def test_linear_vae_at_the_ppca_optimum_has_exact_posterior_and_elbo():
    """Linear encoder/decoder set to the PPCA MLE and its exact posterior q(z|x) = N(M^-1 W^T (x - mean),
    s^2 M^-1), M = W^T W + s^2 I = diag(L_q): every importance weight equals p(x) (log w = PPCA
    log-likelihood to 1e-9 for every sample: q is the posterior), hence IWAE-k = log p(x), and the
    one-sample ELBO (analytic KL) averaged over 4000 draws is within 4 standard errors of it.
    float64."""
    with jax.enable_x64(True):
        x, mean, w, s2, lam_q, log_p = _ppca_problem()
        model = VAE(dim=D, latent_dim=Q, hidden_dims=(), decoder="gaussian")
        a = (w / lam_q).T                                   # M^-1 W^T, [q, D]
        params = {
            "enc_out": {"kernel": jnp.concatenate([a.T, jnp.zeros((D, Q))], 1),
                        "bias": jnp.concatenate([-mean @ a.T, 0.5 * jnp.log(s2 / lam_q)])},
            "dec_out": {"kernel": jnp.asarray(w.T), "bias": jnp.asarray(mean)},
            "log_noise_std": jnp.asarray(0.5 * np.log(s2)),
        }
        xj = jnp.asarray(x)
        log_w = jax.jit(lambda k: log_importance_weights(model, params, xj, k, 8))(jax.random.key(0))
        np.testing.assert_allclose(log_w, np.broadcast_to(log_p, log_w.shape), rtol=0, atol=1e-9)
        np.testing.assert_allclose(iwae_bound(model, params, xj, jax.random.key(1), 3), log_p, atol=1e-9)
        draws = jax.jit(jax.vmap(lambda k: jnp.mean(elbo(model, params, xj, k))))(
            jax.random.split(jax.random.key(2), 4000))
        se = float(np.std(draws) / np.sqrt(len(draws)))
        assert abs(float(np.mean(draws)) - log_p.mean()) < 4 * se + 1e-9, (float(np.mean(draws)), log_p.mean(), se)


def test_trained_linear_vae_elbo_reaches_the_ppca_marginal_likelihood():
    """Maximising the ELBO of the linear-Gaussian VAE from a random initialisation (Adam, 10^4 full-batch
    steps, cosine decay from 3e-2) reaches the PPCA maximum log-likelihood: the mean ELBO (200
    fresh draws per example) is within 0.01 nats per example of it (measured 0.004) and not above
    it beyond noise (ELBO <= log p_theta <= max_theta log p_theta). float64."""
    with jax.enable_x64(True):
        x, _, _, _, _, log_p = _ppca_problem()
        model = VAE(dim=D, latent_dim=Q, hidden_dims=(), decoder="gaussian")
        xj = jnp.asarray(x)
        p0 = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), model.init(jax.random.key(0), xj[:1])["params"])
        steps = 10_000
        opt = optax.adam(optax.cosine_decay_schedule(3e-2, steps))

        @jax.jit
        def fit(p):
            def step(carry, i):
                p, s = carry
                g = jax.grad(lambda p: -jnp.mean(elbo(model, p, xj, jax.random.key(i))))(p)
                up, s = opt.update(g, s, p)
                return (optax.apply_updates(p, up), s), None
            (p, _), _ = jax.lax.scan(step, (p, opt.init(p)), jnp.arange(steps))
            return p, jax.vmap(lambda k: elbo(model, p, xj, k))(jax.random.split(jax.random.key(-1), 200)).mean(0)

        _, elbos = fit(p0)
        gap = log_p.mean() - float(jnp.mean(elbos))
        assert -0.002 < gap < 0.01, gap


def _digits_vae(latent_dim, hidden, steps, eval_every, batch_size):
    """The 8x8 digits, a categorical-decoder VAE and an engine config (Adam 3e-3, seed 0)."""
    from dl_course import data as data_lib
    from dl_course.train import default_config

    c = default_config()
    c.dataset, c.optimizer = "digits", "adam"
    c.steps, c.eval_every, c.batch_size = steps, eval_every, batch_size
    c.seeds, c.learning_rates = [0], [3e-3]
    return data_lib.load("digits"), VAE(dim=64, latent_dim=latent_dim, hidden_dims=(hidden,)), c


def test_elbo_below_iwae_k_below_iwae_K_on_a_trained_digits_vae():
    """A categorical-decoder VAE trained briefly by the engine (``make_task``, 300 Adam steps) on the
    8x8 digits: on 200 test images, mean ELBO < mean IWAE-5 < mean IWAE-50 (Burda et al., Thm. 1;
    each gap is several times its Monte Carlo standard error over images), all finite; the Task's
    metrics are the rate and distortion; beta enters the loss as loss = (distortion + beta rate) / D
    in expectation; samples are images on [0, 1]."""
    from dl_course.train import sweep

    d, model, c = _digits_vae(latent_dim=8, hidden=64, steps=300, eval_every=150, batch_size=128)
    res = sweep(c, task=make_task(model), data=d)
    loss = np.asarray(res.metrics["train_loss"])[0]
    assert loss[-1] < loss[0]
    rate, dist = np.asarray(res.metrics["train_rate"])[0], np.asarray(res.metrics["train_distortion"])[0]
    np.testing.assert_allclose(loss, (dist + rate) / 64, rtol=2e-2)  # one-sample estimates of the same mean
    params = jax.tree.map(lambda v: v[0], res.params)
    x = jnp.asarray(d.x_test[:200])

    @jax.jit
    def bounds(key):
        k1, k2, k3 = jax.random.split(key, 3)
        return elbo(model, params, x, k1), iwae_bound(model, params, x, k2, 5), iwae_bound(model, params, x, k3, 50)

    e, i5, i50 = (np.asarray(v) for v in bounds(jax.random.key(0)))
    assert np.all(np.isfinite(e)) and np.all(np.isfinite(i50))
    for lo, hi in ((e, i5), (i5, i50)):
        diff = hi - lo
        assert diff.mean() > 3 * diff.std() / np.sqrt(len(diff)), (diff.mean(), diff.std())
    imgs = np.asarray(sample(model, params, jax.random.key(1), 16))
    assert imgs.shape == (16, 64) and imgs.min() >= 0 and imgs.max() <= 1


def test_kl_closed_form_and_unknown_decoder():
    """The analytic KL against a Monte Carlo estimate E_q[log q - log p] (10^5 draws, 4 SE) and 0 at
    q = N(0, I); an unknown decoder raises."""
    mu, log_sigma = jnp.array([[0.5, -1.0, 0.0]]), jnp.array([[0.2, -0.5, 0.0]])
    z = mu + jnp.exp(log_sigma) * jax.random.normal(jax.random.key(0), (100_000, 3))
    log_q = jnp.sum(jax.scipy.stats.norm.logpdf(z, mu, jnp.exp(log_sigma)), -1)
    log_prior = jnp.sum(jax.scipy.stats.norm.logpdf(z), -1)
    mc = np.asarray(log_q - log_prior)
    assert abs(mc.mean() - float(kl_to_standard_normal(mu, log_sigma)[0])) < 4 * mc.std() / np.sqrt(len(mc))
    assert float(kl_to_standard_normal(jnp.zeros((1, 3)), jnp.zeros((1, 3)))[0]) == 0.0
    with pytest.raises(ValueError, match="categorical, gaussian"):
        VAE(dim=3, decoder="bernoulli").init(jax.random.key(0), jnp.zeros((1, 3)))


def test_beta_is_a_vmapped_grid_key_equal_to_the_static_task_and_changing_it_does_not_recompile():
    """``beta`` swept as a grid key (``Task.hparams``) trains each run exactly as a Task built
    with that beta (1e-5 relative: vmapped vs unbatched float32 sums), and new beta values reuse
    the compiled program; a higher beta gives a lower rate (Higgins et al. 2017)."""
    from dl_course.train import ConfigError, sweep
    from tests.compile_counter import count_compilations

    d, model, c = _digits_vae(latent_dim=4, hidden=32, steps=60, eval_every=60, batch_size=64)
    task = make_task(model)  # one Task object: the compiled programs are cached per Task
    grid = sweep(c, task=task, data=d, beta=[0.25, 4.0])
    assert [g["beta"] for g in grid.grid] == [0.25, 4.0]
    for i, beta in enumerate((0.25, 4.0)):
        solo = sweep(c, task=make_task(model, beta=beta), data=d)
        for a, b in zip(jax.tree.leaves(jax.tree.map(lambda v: v[i], grid.params)), jax.tree.leaves(solo.params)):
            np.testing.assert_allclose(a, b[0], rtol=1e-5, atol=1e-6 * float(np.max(np.abs(b))))
    rate = np.asarray(grid.metrics["train_rate"])[:, -1]
    assert rate[1] < rate[0], rate
    with count_compilations() as n:
        sweep(c, task=task, data=d, beta=[0.5, 2.0])
    assert n[0] == 0
    with pytest.raises(ConfigError, match="cannot sweep"):  # only a Task that names it can sweep it
        sweep(c, data=d, beta=[0.5])
