"""Score-matching losses: continuous-time denoising score matching (Song et al. 2021, Eq. (7)) and
the noise-conditional loss of NCSN (Song & Ermon 2019, Eqs. (5)-(6)).

Both rest on denoising score matching (Vincent 2011): for ``x_t = alpha x_0 + std z``,

    E || s(x_t) - grad log p_0t(x_t | x_0) ||^2 = E || s(x_t) - grad log p_t(x_t) ||^2 + const,

with ``grad log p_0t(x_t | x_0) = -z / std``, so the minimiser is the score of the perturbed
marginal ``p_t``. Per example (``t``, ``z`` drawn from ``key``):

* ``weighting="sigma2"`` (the usual ``lambda(t) = std(t)^2``, Song et al. 2021 and the reference's
  default): ``0.5 || std s(x_t, t) + z ||^2``, i.e. noise prediction (Ho et al. 2020) in disguise;
* ``weighting="likelihood"`` (``lambda(t) = g(t)^2``; Song, Durkan, Murray & Ermon 2021, NeurIPS):
  ``0.5 g^2 || s + z / std ||^2``, for which the loss bounds the negative log-likelihood.

Importance sampling of ``t`` (Song, Durkan, Murray & Ermon 2021, Sec. 5): the likelihood-weighted
integrand ``g^2 E||s + z/std||^2 = (g^2 / std^2) E||std s + z||^2`` has the factor
``w(t) = g(t)^2 / std(t)^2``, which diverges like ``1/t`` at ``t -> 0`` for VP (a huge variance under
uniform ``t``). With ``importance_sampling=True`` times are drawn from ``p(t) = w(t) / Z`` on
``[eps, T]``, ``Z = int_eps^T w dt``, and the per-example loss is ``Z / (T - eps) * 0.5 ||std s +
z||^2``: the same expectation as ``weighting="likelihood"`` with uniform ``t``, far lower variance
(for VE with ``std = sigma(t)``, ``w`` is constant and the proposal is uniform). ``p`` is inverted
numerically on a log-spaced grid (``importance_times``), so any linear SDE works.

``reduce="sum"`` sums the squared error over data dimensions (with the factor 1/2, as the reference
with ``reduce_mean=False``); ``reduce="mean"`` averages it instead (no 1/2, the reference's
``reduce_mean=True``). The batch loss is the mean over examples.

The SDE is an argument (a pytree), so ``jax.vmap`` over stacked SDE parameters (a sweep over noise
scales) or over keys (seeds) compiles once. ``score_fn(x, t)`` closes over the parameters being
trained; ``make_score_fn`` builds it from a flax ``apply``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from dl_course.generative.sde import bcast

WEIGHTINGS = ("sigma2", "likelihood")
REDUCTIONS = ("sum", "mean")
PARAMETERIZATIONS = ("eps", "score")


def _reduce(sq, reduce):
    flat = sq.reshape(sq.shape[0], -1)
    if reduce == "sum":
        return 0.5 * jnp.sum(flat, axis=-1)
    if reduce == "mean":
        return jnp.mean(flat, axis=-1)
    raise ValueError(f"unknown reduce {reduce!r}; valid: {', '.join(sorted(REDUCTIONS))}")


def _check_weighting(weighting):
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; valid: {', '.join(sorted(WEIGHTINGS))}")


def _weighted_residual(sde, s, x_t, t, z, std, weighting, reduce):
    if weighting == "sigma2":
        return _reduce((bcast(std, s) * s + z) ** 2, reduce)
    _, g = sde.sde(x_t, t)
    return g ** 2 * _reduce((s + z / bcast(std, s)) ** 2, reduce)


_IS_GRID = 2048


def _is_table(sde, eps, dtype):
    """Grid ``t_j`` (log-spaced on ``[eps, T]``) and the normalised CDF of ``w = g^2 / std^2`` there
    (trapezoid in ``log t``: ``int w dt = int w t dlog t``), with the normaliser ``Z``."""
    times = jnp.exp(jnp.linspace(jnp.log(jnp.asarray(eps, dtype)), jnp.log(jnp.asarray(sde.T, dtype)), _IS_GRID))
    _, g = sde.coefficients(times)
    _, std = sde.marginal_coeffs(times)
    density = g ** 2 / std ** 2 * times                               # w(t) dt / dlog t
    dlog = jnp.diff(jnp.log(times))
    cdf = jnp.concatenate([jnp.zeros((1,), dtype), jnp.cumsum(0.5 * (density[1:] + density[:-1]) * dlog)])
    return times, cdf / cdf[-1], cdf[-1]


def likelihood_weight_normalizer(sde, eps=1e-5, dtype=jnp.float32):
    """``Z = int_eps^T g(t)^2 / std(t)^2 dt`` (numerical, log-spaced trapezoid; ``importance_times``)."""
    return _is_table(sde, eps, dtype)[2]


def importance_times(sde, key, n: int, eps=1e-5, dtype=jnp.float32):
    """``n`` times from ``p(t) = g(t)^2 / (std(t)^2 Z)`` on ``[eps, T]`` (Song et al. 2021, "Maximum
    likelihood training of score-based diffusion models", Sec. 5) by inverting the CDF tabulated on
    a log-spaced grid (linear interpolation in ``log t``). Returns ``(t [n], Z)``."""
    times, cdf, z_norm = _is_table(sde, eps, dtype)
    u = jax.random.uniform(key, (n,), dtype)
    return jnp.exp(jnp.interp(u, cdf, jnp.log(times))), z_norm


def dsm_per_example(score_fn: Callable, x, key, sde, *, eps=1e-5, weighting: str = "sigma2",
                    reduce: str = "sum", importance_sampling: bool = False):
    """Continuous-time DSM loss per example, ``t ~ U(eps, T)`` (module docstring). Returns ``[batch]``.

    ``importance_sampling=True`` (only with ``weighting="likelihood"``): ``t ~ p(t) ∝ g^2 / std^2``
    and the loss ``Z / (T - eps) * reduce((std s + z)^2)``, an unbiased estimate of the same
    likelihood-weighted objective (module docstring).
    """
    _check_weighting(weighting)
    if importance_sampling and weighting != "likelihood":
        raise ValueError("importance_sampling=True needs weighting='likelihood'")
    k_t, k_z = jax.random.split(key)
    if importance_sampling:
        t, z_norm = importance_times(sde, k_t, x.shape[0], eps, x.dtype)
    else:
        t = jax.random.uniform(k_t, x.shape[:1], x.dtype, minval=eps, maxval=sde.T)
    z = jax.random.normal(k_z, x.shape, x.dtype)
    mean, std = sde.marginal(x, t)
    x_t = mean + bcast(std, x) * z
    if importance_sampling:
        s = score_fn(x_t, t)
        return z_norm / (sde.T - eps) * _reduce((bcast(std, s) * s + z) ** 2, reduce)
    return _weighted_residual(sde, score_fn(x_t, t), x_t, t, z, std, weighting, reduce)


def dsm_loss(score_fn: Callable, x, key, sde, **options):
    """Mean over the batch of ``dsm_per_example`` (Song et al. 2021, Eq. (7))."""
    return jnp.mean(dsm_per_example(score_fn, x, key, sde, **options))


def noise_levels(sde, num_scales: int, eps=None):
    """The discrete times ``t_i = eps + i (T - eps) / (L - 1)`` of NCSN and their stds ``sigma_i``.

    For ``VESDE`` with ``eps = 0`` these are NCSN's geometric noise levels
    ``sigma_min (sigma_max/sigma_min)^(t_i)`` (Song & Ermon 2019 use L = 10, sigma from 1 down to
    0.01). ``eps`` defaults to ``sde.sampling_eps`` (VP and sub-VP have ``std(0) = 0``, a degenerate
    level; for VE the default moves sigma_min by a relative 1e-4). Returns ``(times [L], sigmas [L])``.
    """
    eps = sde.sampling_eps if eps is None else eps
    times = jnp.linspace(eps, sde.T, num_scales)
    return times, sde.marginal_coeffs(times)[1]


def ncsn_per_example(score_fn: Callable, x, key, sde, *, num_scales: int = 10, eps=None,
                     weighting: str = "sigma2", reduce: str = "sum"):
    """NCSN's noise-conditional score matching loss per example (Song & Ermon 2019, Eq. (6)).

    A level ``i`` uniform in ``{0..L-1}`` per example, ``x_i = alpha_i x + sigma_i z``, and
    ``lambda(sigma_i) = sigma_i^2``: ``0.5 || sigma_i s(x_i, t_i) + z ||^2``. The score network is
    conditioned on the time ``t_i`` of the level (``noise_levels``), so the same network and the same
    ``score_fn(x, t)`` contract serve DSM, the PC samplers and annealed Langevin dynamics.
    """
    _check_weighting(weighting)
    k_i, k_z = jax.random.split(key)
    times, _ = noise_levels(sde, num_scales, eps)
    t = times[jax.random.randint(k_i, x.shape[:1], 0, num_scales)].astype(x.dtype)
    z = jax.random.normal(k_z, x.shape, x.dtype)
    mean, std = sde.marginal(x, t)
    x_t = mean + bcast(std, x) * z
    return _weighted_residual(sde, score_fn(x_t, t), x_t, t, z, std, weighting, reduce)


def ncsn_loss(score_fn: Callable, x, key, sde, **options):
    """Mean over the batch of ``ncsn_per_example`` (Song & Ermon 2019)."""
    return jnp.mean(ncsn_per_example(score_fn, x, key, sde, **options))


LOSSES = {"dsm": dsm_per_example, "ncsn": ncsn_per_example}


def get_loss(name: str):
    """Per-example score-matching loss by name (``dsm``, ``ncsn``); unknown names raise."""
    if name not in LOSSES:
        raise ValueError(f"unknown score-matching loss {name!r}; valid: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]


CORRECTION_SCALES = ("alpha", "alpha2")


def make_score_fn(apply_fn: Callable, params, sde, *, parameterization: str = "eps", model_state=None,
                  train: bool = False, rngs=None, base=None, correction_scale: str = "alpha",
                  correction_bound: float = 0.0):
    """``score_fn(x, t)`` from a network ``apply_fn(variables, x, t, train=..., rngs=...)``.

    ``base`` (optional, an object with ``score(sde, x, t)``, e.g. ``analytic.FactorizedMixture.
    level_histogram``): the score is ``base.score(sde, x, t) + alpha(t) * network score``, so the
    network learns the correction to an analytic model, trained, sampled and scored as one score
    function. The factor ``alpha(t)`` (the SDE's mean coefficient; 1 for VE) follows the true
    correction's decay: for data with covariance ``C`` and an independent-pixel base, ``score -
    base = -[(alpha^2 C + std^2)^-1 - (alpha^2 diag C + std^2)^-1] x = O(alpha^2)`` as ``t -> T``.
    It keeps the network's extrapolation off the late, nearly stationary part of the
    probability-flow ODE, where an unscaled correction let held-out digits escape to huge latents
    (``experiments/score_digits.py``). ``correction_scale="alpha2"`` multiplies the correction by
    ``alpha(t)^2`` instead, the true correction's order itself: the network's reach on the late part of
    the flow shrinks further (at ``t = 0.5`` of the default VP SDE ``alpha^2 = 0.08`` vs ``alpha = 0.29``),
    which removes most of the held-out digits' dequantisation draws that escaped to large latents
    (``experiments/score_digits.py``, measured on a validation split). ``correction_bound = c > 0``
    bounds the network's raw output of the correction smoothly, ``c tanh(net / c)`` (noise units for
    ``parameterization="eps"``): inside the data's range (``|net| << c``) nothing changes; an MLP that
    extrapolates linearly off the typical set can no longer push a probability-flow path outward
    without limit.

    ``parameterization="eps"``: the network predicts the noise ``z`` of ``x_t = alpha x_0 + std z``
    and ``s = -net / std(t)`` (Ho et al. 2020; the reference's VP models; NCSN's ``s = net / sigma``
    up to sign). This puts the network's output on the same O(1) scale at every noise level.
    ``parameterization="score"``: ``s = net`` (the raw output is the score).
    """
    if parameterization not in PARAMETERIZATIONS:
        valid = ", ".join(sorted(PARAMETERIZATIONS))
        raise ValueError(f"unknown parameterization {parameterization!r}; valid: {valid}")
    if correction_scale not in CORRECTION_SCALES:
        raise ValueError(f"unknown correction_scale {correction_scale!r}; valid: {', '.join(CORRECTION_SCALES)}")
    if not correction_bound >= 0:
        raise ValueError(f"correction_bound must be >= 0 (0: unbounded), got {correction_bound}")
    variables = {"params": params, **(model_state or {})}

    def network_score(x, t, bound=0.0):
        out = apply_fn(variables, x, t, train=train, rngs=rngs)
        if bound:
            out = bound * jnp.tanh(out / bound)
        if parameterization == "score":
            return out
        _, std = sde.marginal_coeffs(t)
        return -out / bcast(std, out)

    if base is None:
        return network_score

    def corrected(x, t):
        alpha, _ = sde.marginal_coeffs(t)
        scale = alpha * alpha if correction_scale == "alpha2" else alpha
        return base.score(sde, x, t) + bcast(scale, x) * network_score(x, t, correction_bound)

    return corrected
