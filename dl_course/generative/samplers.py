"""Samplers for score-based generative models, all on device (``lax.scan`` / ``while_loop``).

Entry point: ``sample(sde, score_fn, shape, key, method=..., num_steps=...)`` draws ``x(T)`` from
the prior and integrates backwards to ``t = eps`` with one of ``SAMPLERS``:

* ``"euler_maruyama"``: the reverse-time SDE ``dx = [f - g^2 s] dt + g dW_bar`` (Anderson 1982;
  Song et al. 2021, Eq. (6)) with Euler-Maruyama steps.
* ``"reverse_diffusion"``: the reverse-diffusion predictor (Song et al. 2021, Eq. (47)), which
  reverses the exact forward transition ``x_t = x_s + f + G z`` (``sde.discretize``).
* ``"pc"``: predictor-corrector (Song et al. 2021, Alg. 1-3): at each time, ``n_corrector``
  Langevin steps with step size ``2 r (snr ||z|| / ||s||)^2`` (``r = 1`` for VE, the one-step
  ``alpha`` ratio squared for VP), then a predictor step.
* ``"annealed_langevin"``: annealed Langevin dynamics of NCSN (Song & Ermon 2019, Alg. 1):
  ``n_steps_each`` Langevin steps ``x <- x + a_i s / 2 + sqrt(a_i) z`` at each of ``num_steps``
  noise levels ``sigma_i = std(t_i)``, ``a_i = step_lr sigma_i^2 / sigma_L^2``.
* ``"ode"``: the probability-flow ODE ``dx/dt = f - g^2 s / 2`` (Song et al. 2021, Eq. (13)) through
  ``diffrax`` (``dl_course.generative.ode``): adaptive ``solver="dopri5"`` by default (rtol = atol =
  1e-5, as the reference's RK45) or ``"tsit5"``, fixed-step ``"rk4"`` / ``"euler"``... with
  ``num_steps`` steps.

Conventions. Times run on the grid ``t_i = T + i (eps - T) / num_steps``, ``i = 0..num_steps``; the
returned samples are draws of ``x(eps)`` (so they target ``p_eps``, not the data distribution
itself). ``denoise=True`` adds a final Tweedie step ``x0 = (x + std^2 s(x, eps)) / alpha(eps)``, the
posterior mean ``E[x(0) | x(eps)]`` (Efron 2011) -- the "noise removal" of the reference code.
Step ``i`` draws its noise from ``fold_in(key, i)``. Every numeric option (``eps``, ``snr``,
``step_lr``, ``rtol``...) may be traced, and the SDE is a pytree, so a sampler can be vmapped over
SDE parameters, keys or options; ``num_steps``, ``n_corrector``, ``n_steps_each``, ``shape`` and
``method`` are static. To compile: ``jax.jit(lambda params, key: sample(sde, partial(score, params),
shape, key))`` -- pass parameters as arguments, not as closure constants.

Langevin step sizes follow the reference (Song et al. 2021, Alg. 4): the norms ``||s||``, ``||z||``
are averaged over the batch (leading axis of ``shape``), so samples of one call share a step size.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from dl_course.generative import ode
from dl_course.generative.sde import bcast, time_per_example


def _time_grid(sde, num_steps, eps, dtype):
    return jnp.linspace(jnp.asarray(sde.T, dtype), jnp.asarray(eps, dtype), num_steps + 1)


def _batch_norm_mean(v):
    """Mean over the batch of the per-example Euclidean norms of ``v [batch, ...]``."""
    return jnp.mean(jnp.linalg.norm(v.reshape(v.shape[0], -1), axis=-1))


def _langevin_step(sde, score_fn, x, t, key, snr, alpha):
    """One corrector step ``x + e s + sqrt(2 e) z``, ``e = 2 alpha (snr ||z|| / ||s||)^2``."""
    s = score_fn(x, time_per_example(t, x))
    z = jax.random.normal(key, x.shape, x.dtype)
    step = 2.0 * alpha * (snr * _batch_norm_mean(z) / _batch_norm_mean(s)) ** 2
    return x + bcast(step, x) * s + bcast(jnp.sqrt(2.0 * step), x) * z


def _euler_maruyama_step(sde, score_fn, x, t, t_next, key):
    dt = t_next - t
    drift, g = sde.reverse_drift(score_fn, x, t)
    z = jax.random.normal(key, x.shape, x.dtype)
    return x + drift * dt + bcast(g, x) * jnp.sqrt(-dt) * z


def _reverse_diffusion_step(sde, score_fn, x, t, t_next, key):
    f, big_g = sde.discretize(x, t, t - t_next)
    s = score_fn(x, time_per_example(t, x))
    z = jax.random.normal(key, x.shape, x.dtype)
    return x - f + bcast(big_g ** 2, x) * s + bcast(big_g, x) * z


PREDICTORS = {"euler_maruyama": _euler_maruyama_step, "reverse_diffusion": _reverse_diffusion_step}


def _predictor_sampler(step_fn, sde, score_fn, x, key, *, num_steps, eps):
    times = _time_grid(sde, num_steps, eps, x.dtype)

    def body(x, i):
        return step_fn(sde, score_fn, x, times[i], times[i + 1], jax.random.fold_in(key, i)), None

    x, _ = jax.lax.scan(body, x, jnp.arange(num_steps))
    return x, jnp.asarray(num_steps)


def euler_maruyama(sde, score_fn, x, key, *, num_steps, eps):
    """Euler-Maruyama on the reverse SDE: ``x <- x + [f - g^2 s] dt + g sqrt(|dt|) z``, ``dt < 0``."""
    return _predictor_sampler(_euler_maruyama_step, sde, score_fn, x, key, num_steps=num_steps, eps=eps)


def reverse_diffusion(sde, score_fn, x, key, *, num_steps, eps):
    """Reverse-diffusion predictor: ``x <- x - f + G^2 s + G z`` with ``(f, G) = sde.discretize``."""
    return _predictor_sampler(_reverse_diffusion_step, sde, score_fn, x, key, num_steps=num_steps, eps=eps)


def predictor_corrector(sde, score_fn, x, key, *, num_steps, eps, snr=0.16, n_corrector: int = 1,
                        predictor: str = "reverse_diffusion"):
    """PC sampling (Song et al. 2021, Alg. 1): Langevin corrector(s) at ``t_i``, then a predictor step.

    Corrector step size ``e = 2 r (snr ||z|| / ||s||)^2`` with ``r = (alpha(t_i) / alpha(t_{i+1}))^2``
    (1 for VE; ``1 - beta_i`` for VP as in the reference). ``snr`` 0.16 is the reference's VE value
    on CIFAR-10; ``predictor`` is a key of ``PREDICTORS``.
    """
    if predictor not in PREDICTORS:
        raise ValueError(f"unknown predictor {predictor!r}; valid: {', '.join(sorted(PREDICTORS))}")
    step_fn = PREDICTORS[predictor]
    times = _time_grid(sde, num_steps, eps, x.dtype)

    def body(x, i):
        t, t_next = times[i], times[i + 1]
        k_corr, k_pred = jax.random.split(jax.random.fold_in(key, i))
        alpha_t, _ = sde.marginal_coeffs(t)
        alpha_s, _ = sde.marginal_coeffs(t_next)
        r = (alpha_t / alpha_s) ** 2
        for j in range(n_corrector):
            x = _langevin_step(sde, score_fn, x, t, jax.random.fold_in(k_corr, j), snr, r)
        return step_fn(sde, score_fn, x, t, t_next, k_pred), None

    x, _ = jax.lax.scan(body, x, jnp.arange(num_steps))
    return x, jnp.asarray(num_steps * (n_corrector + 1))


def annealed_langevin(sde, score_fn, x, key, *, num_steps, eps, n_steps_each: int = 100, step_lr=2e-5):
    """Annealed Langevin dynamics (Song & Ermon 2019, Alg. 1) over ``num_steps`` noise levels.

    Levels ``t_i = linspace(T, eps, num_steps)`` with ``sigma_i = std(t_i)``; at level ``i``,
    ``n_steps_each`` steps ``x <- x + a_i s(x, t_i) / 2 + sqrt(a_i) z``, ``a_i = step_lr
    sigma_i^2 / sigma_L^2`` (``step_lr`` is the paper's epsilon, 2e-5 for CIFAR-10 with L = 10 and
    T = 100; toy problems need larger values). Starts from the prior instead of uniform noise.
    """
    levels = jnp.linspace(jnp.asarray(sde.T, x.dtype), jnp.asarray(eps, x.dtype), num_steps)
    _, sigmas = sde.marginal_coeffs(levels)
    step_sizes = step_lr * (sigmas / sigmas[-1]) ** 2

    def level(x, i):
        t = time_per_example(levels[i], x)
        k_level = jax.random.fold_in(key, i)

        def inner(j, x):
            z = jax.random.normal(jax.random.fold_in(k_level, j), x.shape, x.dtype)
            return x + 0.5 * step_sizes[i] * score_fn(x, t) + jnp.sqrt(step_sizes[i]) * z

        return jax.lax.fori_loop(0, n_steps_each, inner, x), None

    x, _ = jax.lax.scan(level, x, jnp.arange(num_steps))
    return x, jnp.asarray(num_steps * n_steps_each)


def probability_flow(sde, score_fn, x, key, *, num_steps, eps, solver: str = "dopri5", rtol=1e-5, atol=1e-5,
                     max_steps: int = 4096):
    """Integrate the probability-flow ODE ``dx/dt = f - g^2 s / 2`` from ``T`` to ``eps``.

    Deterministic given ``x(T)`` (``key`` unused). ``solver`` from ``ode.ODE_SOLVERS``: adaptive
    ``dopri5`` (default; the reference's RK45 with rtol = atol = 1e-5) or ``tsit5`` with ``rtol``,
    ``atol``, ``max_steps``; fixed-step ``rk4`` / ``euler`` / ``heun`` / ``midpoint`` with
    ``num_steps`` steps. The batch is one ODE with shared step sizes, as in the reference (the
    likelihood, in contrast, solves one ODE per example). The returned count is the number of
    evaluations of the drift (score evaluations).
    """
    del key

    def flow(t, y):
        return sde.reverse_drift(score_fn, y, t, probability_flow=True)[0]

    x, info = ode.solve(flow, x, sde.T, eps, solver=solver, num_steps=num_steps, rtol=rtol, atol=atol,
                        max_steps=max_steps)
    return x, info.nfe


SAMPLERS = {
    "euler_maruyama": euler_maruyama,
    "reverse_diffusion": reverse_diffusion,
    "pc": predictor_corrector,
    "annealed_langevin": annealed_langevin,
    "ode": probability_flow,
}


def tweedie_denoise(sde, score_fn, x, t):
    """Tweedie's formula ``E[x(0) | x(t)] = (x + std(t)^2 s(x, t)) / alpha(t)`` (Efron 2011)."""
    t = time_per_example(t, x)
    alpha, std = sde.marginal_coeffs(t)
    return (x + bcast(std ** 2, x) * score_fn(x, t)) / bcast(alpha, x)


def sample(sde, score_fn: Callable, shape, key, *, method: str = "pc", num_steps: int = 1000, eps=None,
           denoise: bool = False, return_nfe: bool = False, **options):
    """Draw ``shape[0]`` samples: ``x(T) ~ prior``, then the reverse process down to ``t = eps``.

    Args:
      sde: a ``VESDE`` / ``VPSDE`` / ``SubVPSDE`` (pytree).
      score_fn: ``score_fn(x, t) -> array like x``; ``t`` is a per-example vector.
      shape: ``(batch, ...)`` of the samples (static).
      key: PRNG key; the prior draw and the sampler's noise are independent streams of it.
      method: a key of ``SAMPLERS``; ``options`` go to that sampler (e.g. ``snr``, ``solver``).
      num_steps: number of time steps (noise levels for ``annealed_langevin``).
      eps: final time (default ``sde.sampling_eps``: 1e-3 for VP/sub-VP, 1e-5 for VE).
      denoise: apply ``tweedie_denoise`` at ``eps`` at the end (one more score evaluation).
      return_nfe: also return the number of score evaluations.
    Returns ``x [shape]`` (and ``nfe`` if ``return_nfe``).
    """
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampling method {method!r}; valid: {', '.join(sorted(SAMPLERS))}")
    eps = sde.sampling_eps if eps is None else eps
    k_prior, k_run = jax.random.split(key)
    x = sde.prior_sample(k_prior, tuple(shape))
    x, nfe = SAMPLERS[method](sde, score_fn, x, k_run, num_steps=num_steps, eps=eps, **options)
    if denoise:
        x = tweedie_denoise(sde, score_fn, x, eps)
        nfe = nfe + 1
    return (x, nfe) if return_nfe else x


__all__ = ["SAMPLERS", "PREDICTORS", "sample", "tweedie_denoise", "euler_maruyama", "reverse_diffusion",
           "predictor_corrector", "annealed_langevin", "probability_flow"]
