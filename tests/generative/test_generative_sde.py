"""SDEs: kernels against the moment ODEs of the linear SDE, exact transitions, priors, pytrees."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from dl_course.generative import SDES, VESDE, VPSDE, GaussianMixture, SubVPSDE, get_sde

ALL = [VESDE(0.01, 50.0), VPSDE(0.1, 20.0), SubVPSDE(0.1, 20.0)]
IDS = ["ve", "vp", "subvp"]


@pytest.mark.parametrize("sde", ALL, ids=IDS)
def test_kernel_solves_the_moment_odes(sde):
    """For dx = a(t) x dt + g(t) dW the kernel mean m = alpha(t) x0 and variance v = std(t)^2 obey
    m' = a m and v' = 2 a v + g^2 (Sarkka & Solin 2019, Eq. 6.2). Checked with forward-mode
    derivatives in float64 at interior times; only rounding error remains (tolerance 1e-9)."""
    with jax.enable_x64(True):
        t = jnp.linspace(0.05, 0.95, 7, dtype=jnp.float64)
        alpha, d_alpha = jax.jvp(lambda s: sde.marginal_coeffs(s)[0], (t,), (jnp.ones_like(t),))
        var, d_var = jax.jvp(lambda s: sde.marginal_coeffs(s)[1] ** 2, (t,), (jnp.ones_like(t),))
        a, g = sde.coefficients(t)
        np.testing.assert_allclose(d_alpha, a * alpha, rtol=1e-9)
        np.testing.assert_allclose(d_var, 2 * a * var + g ** 2, rtol=1e-9)
        # drift and diffusion as returned to samplers
        x = jnp.arange(14.0, dtype=jnp.float64).reshape(7, 2)
        drift, diffusion = sde.sde(x, t)
        np.testing.assert_allclose(drift, a[:, None] * x, rtol=1e-12)
        np.testing.assert_allclose(diffusion, g, rtol=1e-12)


def test_closed_form_endpoints():
    """Initial values of the moment ODEs and the closed forms of Song et al. 2021, App. B."""
    with jax.enable_x64(True):
        ve, vp, subvp = ALL
        np.testing.assert_allclose(ve.marginal_coeffs(jnp.array([0.0, 1.0]))[1], [0.01, 50.0], rtol=1e-12)
        for sde in (vp, subvp):
            alpha, std = sde.marginal_coeffs(jnp.array([0.0, 1.0]))
            np.testing.assert_allclose(alpha, [1.0, np.exp(-(0.1 + 20.0) / 4)], rtol=1e-12)
            assert std[0] == 0.0
        _, std_vp = vp.marginal_coeffs(jnp.array(0.5))
        _, std_sub = subvp.marginal_coeffs(jnp.array(0.5))
        assert std_sub < std_vp  # "sub"-VP: the variance is bounded by the VP one


def test_perturbed_gaussian_matches_analytic_marginal(gaussian, assert_moments):
    """x(t) = alpha x0 + std z with x0 ~ N(mu, C) has law N(alpha mu, alpha^2 C + std^2 I)."""
    @jax.jit
    def perturbed(key):  # the three SDEs in one compiled program
        k0, k1 = jax.random.split(key)
        x0 = gaussian.sample(k0, 20_000)
        t = jnp.full((x0.shape[0],), 0.3)
        z = jax.random.normal(k1, x0.shape)
        return [(sde.perturb(x0, t, z), gaussian.marginal(sde, 0.3)) for sde in ALL]

    for xt, target in perturbed(jax.random.key(0)):
        assert_moments(xt, target.means[0], target.covs[0])


@pytest.mark.parametrize("sde", ALL, ids=IDS)
def test_discretize_is_the_exact_transition(sde):
    """x_t = x_s + f + G z composes the kernels: alpha_t = r alpha_s, std_t^2 = r^2 std_s^2 + G^2; and
    for small dt it is the Euler-Maruyama step (f / dt -> a x, G^2 / dt -> g^2, first order)."""
    with jax.enable_x64(True):
        t = jnp.array([0.2, 0.5, 0.9], jnp.float64)
        x = jnp.ones((3, 1), jnp.float64)
        for dt in (0.1, 1e-6):
            f, big_g = sde.discretize(x, t, dt)
            alpha_t, std_t = sde.marginal_coeffs(t)
            alpha_s, std_s = sde.marginal_coeffs(t - dt)
            r = f[:, 0] + 1.0
            np.testing.assert_allclose(r * alpha_s, alpha_t, rtol=1e-12)
            np.testing.assert_allclose(r ** 2 * std_s ** 2 + big_g ** 2, std_t ** 2, rtol=1e-9)
        a, g = sde.coefficients(t)
        np.testing.assert_allclose(f[:, 0] / dt, a, rtol=1e-4)
        np.testing.assert_allclose(big_g ** 2 / dt, g ** 2, rtol=1e-4)


@pytest.mark.parametrize("sde", ALL, ids=IDS)
def test_prior(sde):
    """prior_logp is the N(0, prior_std^2 I) log-density (scipy); prior_sample has that scale; and
    p_T is close to the prior (alpha(T) ~ 0.007 for VP; std(T) = sigma_max for VE)."""
    with jax.enable_x64(True):
        z = np.random.default_rng(0).normal(size=(5, 3, 2)) * 2.0
        ref = stats.multivariate_normal(np.zeros(6), sde.prior_std ** 2 * np.eye(6)).logpdf(z.reshape(5, 6))
        np.testing.assert_allclose(jax.jit(lambda sde, z: sde.prior_logp(z))(sde, jnp.asarray(z)), ref, rtol=1e-12)
    draw_std = jax.jit(lambda sde, key: jnp.std(sde.prior_sample(key, (20_000, 2))))(sde, jax.random.key(1))
    # std of a sample std for n = 40000 normal draws: sigma / sqrt(2 n); 5 standard errors
    assert abs(float(draw_std) / sde.prior_std - 1.0) < 5 / np.sqrt(2 * 40_000)
    alpha_T, std_T = jax.jit(lambda sde: sde.marginal_coeffs(jnp.array(sde.T)))(sde)
    assert alpha_T < 0.01 or isinstance(sde, VESDE)
    np.testing.assert_allclose(std_T, sde.prior_std, rtol=1e-4)


def test_analytic_mixture_against_scipy():
    """GaussianMixture.logpdf / marginal_logpdf / score against scipy densities and autodiff."""
    with jax.enable_x64(True):
        w = np.array([0.3, 0.7])
        mu = np.array([[1.0, -1.0], [-0.5, 2.0]])
        covs = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.4, -0.1], [-0.1, 0.9]]])
        gm = GaussianMixture.from_covs(w, mu, covs)
        x = np.random.default_rng(0).normal(size=(6, 2)) * 2
        sde, t = VPSDE(), 0.4
        alpha, std = (float(v) for v in sde.marginal_coeffs(jnp.array(t)))

        def scipy_logpdf(y, a, s):
            comps = [np.log(w[k]) + stats.multivariate_normal(a * mu[k], a ** 2 * covs[k] + s ** 2 * np.eye(2)).logpdf(
                y) for k in range(2)]
            return np.logaddexp(*comps)

        @jax.jit
        def ours(gm, y):  # one compiled program instead of op-by-op dispatch
            grad = jax.vmap(jax.grad(lambda v: gm.marginal_logpdf(sde, v[None], t)[0]))(y)
            return gm.logpdf(y), gm.marginal_logpdf(sde, y, t), gm.score(sde, y, t), grad, gm.covs

        logp, logp_t, score, autodiff, recovered = ours(gm, jnp.asarray(x))
        np.testing.assert_allclose(logp, scipy_logpdf(x, 1.0, 0.0), rtol=1e-12)
        np.testing.assert_allclose(logp_t, scipy_logpdf(x, alpha, std), rtol=1e-12)
        np.testing.assert_allclose(score, autodiff, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(recovered, covs, rtol=1e-12)


def test_sde_is_a_pytree_sweepable_without_recompiling():
    """A stack of VESDEs vmaps like any pytree (== per-run), and new parameter values reuse the
    compiled program: a sweep over noise scales is one program."""
    traces = []

    @jax.jit
    def std_at_half(sde):
        traces.append(1)
        return sde.marginal(jnp.ones((2, 3)), jnp.array([0.5, 0.5]))[1]

    stacked = VESDE(sigma_min=jnp.full((3,), 0.01), sigma_max=jnp.array([5.0, 10.0, 50.0]))
    swept = jax.vmap(std_at_half)(stacked)
    for i, smax in enumerate([5.0, 10.0, 50.0]):
        single = std_at_half(VESDE(jnp.float32(0.01), jnp.float32(smax)))
        np.testing.assert_allclose(swept[i], single, rtol=1e-6)
        np.testing.assert_allclose(single, np.sqrt(0.01 * smax), rtol=1e-5)
    assert len(traces) == 2  # once under vmap, once for all three scalar SDEs


def test_registry():
    assert isinstance(get_sde("vp", beta_max=10.0), VPSDE)
    assert set(SDES) == {"ve", "vp", "subvp"}
    with pytest.raises(ValueError, match="subvp, ve, vp"):
        get_sde("edm")
