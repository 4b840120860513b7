"""A likelihood bound for discrete pixels from a diffusion model: Gaussian dequantisation by the
forward kernel, the probability-flow ODE from a small time, and a per-pixel level decoder.

Pixels take ``K`` levels ``x_k = low + k Delta``, ``Delta = (high - low) / (K - 1)``. Uniform
dequantisation (``likelihood.dequantize``) asks a continuous model to reproduce the box edges of the
bins; a score model, smooth at every noise level, blurs them, and on 17-level digits that blur costs
more than a bit per pixel (``experiments/score_digits.py``). The variational alternative used by
discrete-data diffusion models (Ho et al. 2020, Sec. 3.3; Kingma et al. 2021, "Variational
diffusion models", Sec. 3.3) stops the diffusion at a small time ``eps`` and decodes there: with
``q(z | x) = N(z; alpha x, std^2 I)`` the forward kernel at ``eps``, ``p_theta(z)`` the model's
density at ``eps`` (exact for the probability-flow ODE, Song et al. 2021, Eq. (13) and App. D) and a
decoder ``p(k | z)``, Jensen's inequality gives for every image ``k``

    log P(k) >= E_{z ~ q(. | x_k)} [ log p_theta(z) + log p(k | z) - log q(z | x_k) ].

The decoder here is the posterior of the levels under a uniform prior, pixel by pixel,
``p(k_i | z_i) = N(z_i; alpha x_{k_i}, std^2) / sum_j N(z_i; alpha x_j, std^2)``, so the last two
terms collapse to ``- sum_i log sum_j N(z_i; alpha x_j, std^2)`` (no parameters). The bound is
tight when the levels are resolved at ``eps`` (``std / alpha << Delta``) and the model is exact:
its gap is ``E_z KL(P(k | z) || p(k | z))``. ``decoder_time`` picks ``eps`` from the ratio
``rho = std(eps) / (alpha(eps) Delta)``; at ``rho = 0.2`` the gap is about 0.01 bits/dim for
the per-pixel histogram model (``tests/generative/test_discrete_bound.py``), and the data the score
model must learn are Gaussian bumps of width ``0.2 Delta``, not boxes.

This bounds the same quantity as uniform dequantisation does (the discrete negative log-likelihood,
Theis et al. 2016), so the two are compared in one table in bits per dimension
``-bound / (D ln 2)``; the value of one draw of ``z`` per image is an unbiased estimate of the bound
(as one draw of ``u`` is for uniform dequantisation).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.generative.likelihood import level_values, likelihood  # noqa: F401 (level_values re-exported)


def decoder_time(sde, num_levels: int, low=0.0, high=1.0, ratio: float = 0.2) -> float:
    """The time ``eps`` at which the forward kernel's noise, in data units, is ``ratio`` level
    spacings: ``std(eps) / alpha(eps) = ratio (high - low) / (K - 1)``. Solved by bisection in
    ``log t`` on ``[1e-9, T]`` (``std / alpha`` increases with ``t`` for VE, VP and sub-VP); a
    ``ratio`` the SDE cannot reach raises. A host computation on Python numbers, also when called
    while a function is being traced by ``jit`` (``ratio`` must then be a concrete number)."""
    if isinstance(ratio, jax.core.Tracer):
        raise TypeError("decoder ratio must be a concrete number (a static argument under jit), got a traced value")
    if not ratio > 0:
        raise ValueError(f"decoder ratio must be > 0, got {ratio}")
    target = ratio * (high - low) / (num_levels - 1)

    def noise(t):
        with jax.ensure_compile_time_eval():  # concrete under jit too (the SDE's coefficients are jnp ops)
            return float(np.divide(*np.asarray(sde.marginal_coeffs(jnp.asarray(t, jnp.float32)))[::-1]))
    lo, hi = math.log(1e-9), math.log(float(sde.T))
    if not noise(math.exp(lo)) <= target <= noise(math.exp(hi)):
        raise ValueError(f"decoder ratio {ratio} needs std/alpha = {target:.3g}, outside what {type(sde).__name__} "
                         f"reaches on [1e-9, T] ({noise(math.exp(lo)):.3g} .. {noise(math.exp(hi)):.3g})")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if noise(math.exp(mid)) < target else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def log_level_evidence(z, alpha, std, levels):
    """``sum_i log sum_j N(z_i; alpha x_j, std^2)`` per example, ``z [batch, ...]``: minus the
    decoder-plus-entropy term of the bound (module docstring)."""
    flat = z.reshape(z.shape[0], -1)
    diff = flat[..., None] - alpha * levels
    log_n = -0.5 * (diff / std) ** 2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi)
    return jnp.sum(jax.scipy.special.logsumexp(log_n, axis=-1), axis=-1)


class DiscreteBound(NamedTuple):
    """Per example: ``bound`` (nats, a lower bound on ``log P(k)``) ``= model_log_prob -
    level_evidence``; ``model_log_prob`` the PF-ODE ``log p_theta(z)`` at ``eps``; ``nfe`` and
    ``success`` of its solve; ``z`` the dequantised point."""

    bound: Any
    model_log_prob: Any
    level_evidence: Any
    nfe: Any
    success: Any
    z: Any


def discrete_log_likelihood_bound(sde, score_fn, x, key, *, eps: float, num_levels: int, low=0.0, high=1.0,
                                  **likelihood_options) -> DiscreteBound:
    """The bound of the module docstring for images ``x`` on the level grid, one ``z`` per image.

    Args:
      sde, score_fn: the model (``score_fn`` valid on ``[eps, T]``; trained with the same ``eps``).
      x: ``[batch, ...]`` images whose values are grid levels (``level_values``).
      key: draws ``z ~ q(. | x)`` and the Hutchinson probes.
      eps: the decoding time (``decoder_time``).
      likelihood_options: for ``likelihood`` (solver, rtol, atol, divergence, num_probes, ...).
    """
    k_z, k_probe = jax.random.split(key)
    alpha, std = sde.marginal_coeffs(jnp.asarray(eps, x.dtype))
    z = alpha * x + std * jax.random.normal(k_z, x.shape, x.dtype)
    out = likelihood(sde, score_fn, z, k_probe, eps=eps, **likelihood_options)
    evidence = log_level_evidence(z, alpha, std, level_values(num_levels, low, high, x.dtype))
    return DiscreteBound(out.log_prob - evidence, out.log_prob, evidence, out.nfe, out.success, z)


class BoundDraws(NamedTuple):
    """Per image, over ``num_draws`` independent draws of ``z`` (and of the probes, if Hutchinson):
    ``mean`` bound (nats), its ``stderr`` (sample std / sqrt(R); NaN for one draw), every draw's
    ``bound [R, batch]``, the mean ``nfe`` and whether every solve succeeded."""

    mean: Any
    stderr: Any
    bound: Any
    nfe: Any
    success: Any


def discrete_bound_draws(sde, score_fn, x, key, *, num_draws: int, eps: float, num_levels: int, low=0.0,
                         high=1.0, **likelihood_options) -> BoundDraws:
    """``discrete_log_likelihood_bound`` for ``num_draws`` independent keys ``fold_in(key, r)``
    (``lax.map``, one draw at a time), averaged per image. The mean of ``R`` draws is an unbiased
    estimate of the same bound with ``R`` times less variance; ``stderr`` is that estimate's standard
    error per image. With ``divergence="exact"`` the only randomness left is the dequantisation
    ``z ~ q(. | x)``; the Hutchinson probe adds its own variance on top (their sum is what one draw
    of the default estimator carries)."""
    def one(r):
        out = discrete_log_likelihood_bound(sde, score_fn, x, jax.random.fold_in(key, r), eps=eps,
                                            num_levels=num_levels, low=low, high=high, **likelihood_options)
        return out.bound, out.nfe, out.success

    bound, nfe, ok = jax.lax.map(one, jnp.arange(num_draws))
    stderr = jnp.std(bound, axis=0, ddof=1) / jnp.sqrt(num_draws) if num_draws > 1 else jnp.full(x.shape[:1], jnp.nan)
    return BoundDraws(jnp.mean(bound, 0), stderr, bound, jnp.mean(nfe, 0), jnp.all(ok, 0))


def decode_levels(z, alpha, std, num_levels: int, low=0.0, high=1.0):
    """The decoder's most probable level of every pixel of ``z`` (the nearest ``alpha x_j``), as
    grid values: turns samples at ``eps`` into images."""
    levels = level_values(num_levels, low, high, z.dtype)
    k = jnp.argmin(jnp.abs(z[..., None] - alpha * levels), axis=-1)
    return levels[k]


def discrete_bits_per_dim(bound, num_dims: int):
    """``-bound / (D ln 2)``: bits per dimension of the discrete data (an upper bound on the NLL)."""
    return -bound / (num_dims * jnp.log(2.0))
