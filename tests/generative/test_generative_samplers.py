"""Samplers driven by the exact score of Gaussian data reproduce the exact marginal at t = eps.

Ground truth: for data N(mu, C) the marginal at time t is N(alpha mu, alpha^2 C + std^2 I) and its
score is closed-form (``GaussianMixture``). Each stochastic sampler must return samples whose mean and
covariance match the marginal at ``eps`` within 5 Monte Carlo standard errors (n = 5000, so 5 SE
is 0.07 on the mean and 0.1 on a variance). The discretisation biases at these step counts,
measured once with n = 100000, are below 0.03, i.e. under 2 standard errors here; a wrong sign or
factor in a drift, diffusion or step size moves a moment by many standard errors.

The probability-flow ODE is deterministic, and for Gaussian data its flow map is affine: in the
eigenbasis of C each coordinate is rescaled by sqrt(v_eps / v_T), v_t = alpha_t^2 lam + std_t^2.
The ODE sampler is checked sample by sample against this map (so the prior mismatch p_T != prior,
visible for VE, is accounted for exactly).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.generative import SAMPLERS, VESDE, VPSDE, SubVPSDE, sample, samplers, tweedie_denoise

N = 5_000
VE = VESDE(0.01, 20.0)

# (method, num_steps, options) per SDE; each SDE's samplers are compiled as one program (compile
# time, not run time, dominates these tests on CPU).
STOCHASTIC_CASES = {
    "vp": (VPSDE(), [("euler_maruyama", 200, {}), ("reverse_diffusion", 200, {}), ("pc", 200, {"snr": 0.16}),
                     ("annealed_langevin", 100, {"n_steps_each": 10, "step_lr": 1e-4})]),
    "ve": (VE, [("pc", 200, {"snr": 0.16, "predictor": "euler_maruyama"}),
                ("annealed_langevin", 100, {"n_steps_each": 10, "step_lr": 1e-4})]),
    "subvp": (SubVPSDE(), [("euler_maruyama", 200, {})]),
}


@pytest.mark.parametrize("name", list(STOCHASTIC_CASES))
def test_stochastic_samplers_match_the_marginal(name, gaussian, assert_moments):
    sde, cases = STOCHASTIC_CASES[name]

    @jax.jit
    def run(sde, key):
        return [sample(sde, gaussian.score_fn(sde), (N, 2), key, method=method, num_steps=num_steps, **options)
                for method, num_steps, options in cases]

    target = gaussian.marginal(sde, sde.sampling_eps)
    for (method, _, _), x in zip(cases, run(sde, jax.random.key(0))):
        assert_moments(x, target.means[0], target.covs[0], label=f"{name}/{method}")


def _exact_flow_map(gaussian, sde, x_T, eps):
    """The probability-flow ODE's map from time T to eps for Gaussian data (module docstring)."""
    start, end = gaussian.marginal(sde, sde.T), gaussian.marginal(sde, eps)
    u = gaussian.eigvecs[0]
    scale = jnp.sqrt(end.eigvals[0] / start.eigvals[0])
    return end.means[0] + ((x_T - start.means[0]) @ u) * scale @ u.T


ODE_CASES = [(VPSDE(), "rk4"), (VE, "dopri5"), (SubVPSDE(), "rk4")]


def test_probability_flow_ode_is_the_exact_transport_map(gaussian, assert_moments):
    """Per sample, the ODE sampler equals the exact affine flow map of its prior draw (tolerance 2e-4,
    ten times the solver error measured in float32 at 100 RK4 steps / rtol = atol = 1e-5), and its
    samples have the moments of the exact push-forward of the prior."""
    @jax.jit
    def run(key):
        out = []
        for sde, solver in ODE_CASES:
            x_T = sde.prior_sample(key, (N, 2))
            x, nfe = samplers.probability_flow(sde, gaussian.score_fn(sde), x_T, None, num_steps=100,
                                               eps=sde.sampling_eps, solver=solver)
            out.append((x, nfe, _exact_flow_map(gaussian, sde, x_T, sde.sampling_eps)))
        return out

    for (sde, solver), (x, nfe, exact) in zip(ODE_CASES, run(jax.random.key(0))):
        label = f"{type(sde).__name__}/{solver}"
        np.testing.assert_allclose(x, exact, atol=2e-4, rtol=2e-4, err_msg=label)
        # moments of the push-forward of N(0, prior_std^2 I) by the affine map x -> m + A (x - m_T)
        start, end = gaussian.marginal(sde, sde.T), gaussian.marginal(sde, sde.sampling_eps)
        u = gaussian.eigvecs[0]
        a = u @ jnp.diag(jnp.sqrt(end.eigvals[0] / start.eigvals[0])) @ u.T
        assert_moments(x, end.means[0] - a @ start.means[0], sde.prior_std ** 2 * a @ a.T, label=label)
        assert int(nfe) == 400 if solver == "rk4" else 0 < int(nfe) < 1000


def test_sampler_vmaps_over_noise_scales(gaussian):
    """A sweep over sigma_max in one vmapped program equals the per-run samples (computed without
    vmap in the same program). (That new SDE values reuse a compiled program is tested in
    test_generative_sde.py.)"""
    def draw(sde, key):
        return sample(sde, gaussian.score_fn(sde), (64, 2), key, method="euler_maruyama", num_steps=20)

    smax = jnp.array([10.0, 20.0])
    keys = jax.random.split(jax.random.key(3), 2)

    @jax.jit
    def run():
        swept = jax.vmap(draw)(VESDE(jnp.full((2,), 0.01), smax), keys)
        return swept, [draw(VESDE(jnp.float32(0.01), smax[i]), keys[i]) for i in range(2)]

    swept, singles = run()
    for i in range(2):
        np.testing.assert_allclose(swept[i], singles[i], rtol=1e-4, atol=1e-5)
    assert not np.allclose(singles[0], singles[1])


def test_tweedie_denoise_is_the_posterior_mean(gaussian):
    """E[x0 | x_t] = mu + alpha C (alpha^2 C + std^2 I)^-1 (x_t - alpha mu) for Gaussian data."""
    sde, t = VPSDE(), 0.2
    x_t = jax.random.normal(jax.random.key(0), (5, 2))

    @jax.jit
    def both(x):
        alpha, std = sde.marginal_coeffs(jnp.asarray(t))
        mu, c = gaussian.means[0], gaussian.covs[0]
        gain = alpha * c @ jnp.linalg.inv(alpha ** 2 * c + std ** 2 * jnp.eye(2))
        return tweedie_denoise(sde, gaussian.score_fn(sde), x, t), mu + (x - alpha * mu) @ gain.T

    ours, exact = both(x_t)
    np.testing.assert_allclose(ours, exact, rtol=1e-4, atol=1e-5)


def test_unknown_names_raise(gaussian):
    with pytest.raises(ValueError, match=", ".join(sorted(SAMPLERS))):
        sample(VPSDE(), gaussian.score_fn(VPSDE()), (4, 2), jax.random.key(0), method="ddim")
    with pytest.raises(ValueError, match="euler_maruyama, reverse_diffusion"):
        sample(VPSDE(), gaussian.score_fn(VPSDE()), (4, 2), jax.random.key(0), method="pc", predictor="heun")
