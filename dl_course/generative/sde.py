"""Forward SDEs of score-based generative modelling (Song et al. 2021, ICLR, "Score-Based Generative
Modeling through Stochastic Differential Equations", Sec. 3.4 and App. B).

All three SDEs are linear with scalar coefficients,

    dx = a(t) x dt + g(t) dW,        t in [0, T], T = 1,

so the perturbation kernel is Gaussian, ``x(t) | x(0) ~ N(alpha(t) x(0), std(t)^2 I)``, and every
sampler / likelihood in this package needs only ``a, g, alpha, std``:

* VE (variance exploding, the continuous limit of NCSN / SMLD, Song & Ermon 2019):
  ``sigma(t) = sigma_min (sigma_max / sigma_min)^t``, ``a = 0``,
  ``g = sigma(t) sqrt(2 log(sigma_max / sigma_min))``, ``alpha = 1``, ``std = sigma(t)``;
  prior ``N(0, sigma_max^2 I)``. Convention of Song et al.: ``std(t) = sigma(t)``, not
  ``sqrt(sigma(t)^2 - sigma_min^2)``, i.e. ``x(0)`` is the data already blurred by ``sigma_min``.
* VP (variance preserving, the continuous limit of DDPM, Ho et al. 2020):
  ``beta(t) = beta_min + t (beta_max - beta_min)``, ``a = -beta/2``, ``g = sqrt(beta)``,
  ``alpha = exp(-t^2 (beta_max - beta_min)/4 - t beta_min/2)``, ``std = sqrt(1 - alpha^2)``;
  prior ``N(0, I)``.
* sub-VP: ``a = -beta/2``, ``g = sqrt(beta (1 - exp(-2 int_0^t beta)))`` = ``sqrt(beta (1 - alpha^4))``,
  same ``alpha``, ``std = 1 - alpha^2`` (<= the VP std at every t); prior ``N(0, I)``.

The classes are ``flax.struct`` dataclasses, i.e. pytrees whose float fields are leaves: they can be
passed through ``jax.jit`` as arguments and stacked / vmapped, so a sweep over noise scales is one
compiled program (e.g. ``jax.vmap(f)(VESDE(sigma_min=0.01, sigma_max=jnp.array([5., 10., 50.])))``).

Shapes: ``x`` is ``[batch, ...]``; ``t`` is a per-example vector ``[batch]`` (a scalar broadcasts).
Per-example coefficients (``diffusion``, ``std``) are returned with shape ``[batch]``; use
``bcast(v, x)`` to multiply them into ``x``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct


def bcast(v, x):
    """Reshape a per-example vector ``v [batch]`` (or a scalar) to broadcast against ``x [batch, ...]``."""
    v = jnp.asarray(v)
    return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))


def time_per_example(t, x):
    """``t`` as a float vector ``[batch]`` matching ``x``'s leading axis (scalars broadcast)."""
    return jnp.broadcast_to(jnp.asarray(t, dtype=x.dtype), x.shape[:1])


def _sum_except_batch(v):
    return jnp.sum(v.reshape(v.shape[0], -1), axis=-1)


class LinearSDE:
    """Methods shared by the linear SDEs ``dx = a(t) x dt + g(t) dW`` (see module docstring).

    Subclasses define ``coefficients(t) -> (a, g)``, ``marginal_coeffs(t) -> (alpha, std)``,
    ``prior_std`` and ``sampling_eps``.
    """

    T = 1.0

    # -- forward process ------------------------------------------------------------------------
    def sde(self, x, t):
        """Drift ``f(x, t) = a(t) x`` (shaped like ``x``) and diffusion ``g(t)`` (``[batch]``)."""
        a, g = self.coefficients(time_per_example(t, x))
        return bcast(a, x) * x, g

    def marginal(self, x0, t):
        """Perturbation kernel ``p_0t(x(t) | x(0) = x0) = N(mean, std^2 I)``: ``(alpha(t) x0, std(t))``.

        ``mean`` is shaped like ``x0``; ``std`` is ``[batch]``.
        """
        alpha, std = self.marginal_coeffs(time_per_example(t, x0))
        return bcast(alpha, x0) * x0, std

    def perturb(self, x0, t, noise):
        """``x(t) = alpha(t) x0 + std(t) noise`` for standard normal ``noise`` shaped like ``x0``."""
        mean, std = self.marginal(x0, t)
        return mean + bcast(std, x0) * noise

    def discretize(self, x, t, dt):
        """Exact one-step transition of the forward SDE from ``t - dt`` to ``t``.

        ``x(t) = x(t - dt) + f + G z`` with ``f = (r - 1) x``, ``r = alpha(t) / alpha(t - dt)`` and
        ``G^2 = std(t)^2 - r^2 std(t - dt)^2`` (the Gaussian transition of a linear SDE). For VE this
        is NCSN's ``G^2 = sigma_i^2 - sigma_{i-1}^2``; for VP it is DDPM's ``r^2 = 1 - beta_i``
        (Song et al. 2021, Eqs. (46)-(47)). Returns ``(f [like x], G [batch])``.
        """
        t = time_per_example(t, x)
        alpha_t, std_t = self.marginal_coeffs(t)
        alpha_s, std_s = self.marginal_coeffs(t - dt)
        r = alpha_t / alpha_s
        g2 = jnp.maximum(std_t ** 2 - (r * std_s) ** 2, 0.0)
        return bcast(r - 1.0, x) * x, jnp.sqrt(g2)

    # -- prior ----------------------------------------------------------------------------------
    def prior_sample(self, key, shape, dtype=jnp.float32):
        """A draw from the prior ``N(0, prior_std^2 I)`` (approximately ``p_T``) of shape ``shape``."""
        return self.prior_std * jax.random.normal(key, shape, dtype)

    def prior_logp(self, z):
        """Per-example log-density of ``z [batch, ...]`` under the prior ``N(0, prior_std^2 I)``, nats."""
        d = math.prod(z.shape[1:])
        s = jnp.asarray(self.prior_std, z.dtype)
        return -0.5 * d * jnp.log(2 * jnp.pi * s ** 2) - 0.5 * _sum_except_batch(z ** 2) / s ** 2

    # -- reverse time ---------------------------------------------------------------------------
    def reverse_drift(self, score_fn, x, t, probability_flow: bool = False):
        """Drift of the reverse-time SDE ``f - g^2 s`` (Anderson 1982), or of the probability-flow
        ODE ``f - g^2 s / 2`` (Song et al. 2021, Eq. (13)), with ``s = score_fn(x, t)``.

        Returns ``(drift [like x], g [batch])``; the reverse SDE's diffusion is ``g``, the ODE's 0.
        """
        t = time_per_example(t, x)
        f, g = self.sde(x, t)
        coef = 0.5 if probability_flow else 1.0
        return f - coef * bcast(g ** 2, x) * score_fn(x, t), g


@struct.dataclass
class VESDE(LinearSDE):
    """Variance-exploding SDE ``dx = sigma(t) sqrt(2 log(sigma_max/sigma_min)) dW`` (Song et al. 2021)."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0

    sampling_eps = 1e-5

    def sigma(self, t):
        """Noise level ``sigma(t) = sigma_min (sigma_max / sigma_min)^t``."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def coefficients(self, t):
        """``(a(t), g(t)) = (0, sigma(t) sqrt(2 log(sigma_max / sigma_min)))``."""
        g = self.sigma(t) * jnp.sqrt(2.0 * jnp.log(self.sigma_max / self.sigma_min))
        return jnp.zeros_like(t), g

    def marginal_coeffs(self, t):
        """``(alpha(t), std(t)) = (1, sigma(t))``."""
        return jnp.ones_like(t), self.sigma(t)

    @property
    def prior_std(self):
        return self.sigma_max


def _vp_log_alpha(beta_min, beta_max, t):
    """``log alpha(t) = -int_0^t beta(s) ds / 2 = -t^2 (beta_max - beta_min)/4 - t beta_min/2``."""
    return -0.25 * t ** 2 * (beta_max - beta_min) - 0.5 * t * beta_min


@struct.dataclass
class _LinearBetaSDE(LinearSDE):
    """The linear noise schedule shared by the VP and sub-VP SDEs."""

    beta_min: float = 0.1
    beta_max: float = 20.0

    sampling_eps = 1e-3

    def beta(self, t):
        """Linear schedule ``beta(t) = beta_min + t (beta_max - beta_min)``."""
        return self.beta_min + t * (self.beta_max - self.beta_min)


@struct.dataclass
class VPSDE(_LinearBetaSDE):
    """Variance-preserving SDE ``dx = -beta(t) x / 2 dt + sqrt(beta(t)) dW`` (Song et al. 2021)."""

    def coefficients(self, t):
        """``(a(t), g(t)) = (-beta(t)/2, sqrt(beta(t)))``."""
        b = self.beta(t)
        return -0.5 * b, jnp.sqrt(b)

    def marginal_coeffs(self, t):
        """``alpha(t) = exp(-int_0^t beta / 2)``, ``std(t) = sqrt(1 - alpha(t)^2)``."""
        log_alpha = _vp_log_alpha(self.beta_min, self.beta_max, t)
        return jnp.exp(log_alpha), jnp.sqrt(-jnp.expm1(2.0 * log_alpha))

    @property
    def prior_std(self):
        return 1.0


@struct.dataclass
class SubVPSDE(_LinearBetaSDE):
    """sub-VP SDE ``dx = -beta x / 2 dt + sqrt(beta (1 - exp(-2 int_0^t beta))) dW`` (Song et al. 2021)."""

    def coefficients(self, t):
        """``(a, g) = (-beta/2, sqrt(beta (1 - exp(-2 beta_min t - (beta_max - beta_min) t^2))))``."""
        b = self.beta(t)
        discount = -jnp.expm1(4.0 * _vp_log_alpha(self.beta_min, self.beta_max, t))
        return -0.5 * b, jnp.sqrt(b * discount)

    def marginal_coeffs(self, t):
        """``alpha(t)`` as for VP, ``std(t) = 1 - alpha(t)^2``."""
        log_alpha = _vp_log_alpha(self.beta_min, self.beta_max, t)
        return jnp.exp(log_alpha), -jnp.expm1(2.0 * log_alpha)

    @property
    def prior_std(self):
        return 1.0


SDES = {"ve": VESDE, "vp": VPSDE, "subvp": SubVPSDE}


def get_sde(name: str, **params):
    """SDE by registry name (``ve``, ``vp``, ``subvp``); unknown names raise listing the valid ones."""
    if name not in SDES:
        raise ValueError(f"unknown SDE {name!r}; valid: {', '.join(sorted(SDES))}")
    return SDES[name](**params)
