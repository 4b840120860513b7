"""A score model of images whose pixels take ``K`` levels: the choices a study makes once
(dequantisation, base score, decoding time) and the two things it does with trained weights
(test bits/dim, samples), in one place for every study that scores discrete images.

* ``dequantization="gaussian"``: trained on the grid images for ``t >= eps`` (``eps`` from
  ``discrete_bound.decoder_time``), scored by ``discrete_bound.discrete_log_likelihood_bound``,
  sampled down to ``eps`` and decoded to the nearest levels (Ho et al. 2020; Kingma et al. 2021).
* ``dequantization="uniform"``: trained on uniformly dequantised images, scored by the PF-ODE
  density of a uniformly dequantised test array (``likelihood.bits_per_dim``; Song et al. 2021),
  sampled to ``sde.sampling_eps`` with Tweedie denoising.
* ``base_score="histogram"`` (Gaussian only): the network corrects the exact score of the diffused
  per-pixel histogram (``analytic.FactorizedMixture.level_histogram``, ``losses.make_score_fn``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp

from dl_course.errors import ConfigError
from dl_course.generative.analytic import FactorizedMixture
from dl_course.generative.discrete_bound import (
    decode_levels,
    decoder_time,
    discrete_bits_per_dim,
    discrete_bound_draws,
    discrete_log_likelihood_bound,
)
from dl_course.generative.likelihood import (
    bits_per_dim,
    grid_index,
    level_values,
    likelihood,
)
from dl_course.generative.losses import CORRECTION_SCALES, make_score_fn
from dl_course.generative.samplers import sample, tweedie_denoise

DEQUANTIZATIONS = ("gaussian", "uniform")
BASE_SCORES = ("histogram", "none")


def check_choices(dequantization: str, base_score: str, prefix: str = "") -> None:
    """One line naming a bad choice and the valid ones (``prefix``: the config path, e.g. ``score.``)."""
    if dequantization not in DEQUANTIZATIONS:
        raise ConfigError(f"unknown {prefix}dequantization {dequantization!r}; valid: {', '.join(DEQUANTIZATIONS)}")
    if base_score not in BASE_SCORES:
        raise ConfigError(f"unknown base score {base_score!r}; valid: {prefix}base_score "
                          f"{' or '.join(BASE_SCORES)}")
    if base_score == "histogram" and dequantization != "gaussian":
        raise ConfigError(f"{prefix}base_score='histogram' (point masses on the levels) needs "
                          f"{prefix}dequantization='gaussian'; use {prefix}base_score='none' "
                          "with uniform dequantisation")


class LevelScoreModel(NamedTuple):
    """A network ``apply`` under ``sde`` for ``num_levels``-level images in ``[low, high]``; ``eps`` is
    the decoding time (Gaussian) or the PF-ODE's start (uniform); ``base`` the analytic base score or
    None; ``correction_scale`` and ``correction_bound`` the time factor of the network's correction
    to it and the smooth bound on its raw output (``losses.make_score_fn``)."""

    apply: Callable
    sde: Any
    base: Any
    eps: float
    gaussian: bool
    num_levels: int
    low: float
    high: float
    correction_scale: str = "alpha"
    correction_bound: float = 0.0

    def score_fn(self, params):
        """``score_fn(x, t)`` of the trained weights (base included)."""
        return make_score_fn(self.apply, params, self.sde, base=self.base, correction_scale=self.correction_scale,
                             correction_bound=self.correction_bound)

    def test_bits_per_dim(self, params, key, x_grid, x_uniform, **ode_options):
        """Per-image bits/dim, NFE and solver success: the discrete bound of the grid images
        ``x_grid`` (Gaussian), or the PF-ODE density of the dequantised ``x_uniform`` (uniform).
        ``ode_options`` go to ``likelihood`` (solver, rtol, atol, divergence, num_probes, ...)."""
        dims = x_grid.size // x_grid.shape[0]
        if self.gaussian:
            out = discrete_log_likelihood_bound(self.sde, self.score_fn(params), x_grid, key, eps=self.eps,
                                                num_levels=self.num_levels, low=self.low, high=self.high,
                                                **ode_options)
            return discrete_bits_per_dim(out.bound, dims), out.nfe, out.success
        out = likelihood(self.sde, self.score_fn(params), x_uniform, key, eps=self.eps, **ode_options)
        return bits_per_dim(out.log_prob, dims, self.num_levels, self.low, self.high), out.nfe, out.success

    def test_bound_draws(self, params, key, x_grid, *, num_draws: int, **ode_options):
        """Gaussian only: per-image bits/dim as the mean of ``num_draws`` independent draws of the
        discrete bound (``discrete_bound.discrete_bound_draws``), its standard error, the first draw
        alone (what a one-draw estimate reports), the mean NFE and solver success. Returns
        ``(bits_per_dim, stderr, first_draw, nfe, success)``, each per image."""
        dims = x_grid.size // x_grid.shape[0]
        out = discrete_bound_draws(self.sde, self.score_fn(params), x_grid, key, num_draws=num_draws, eps=self.eps,
                                   num_levels=self.num_levels, low=self.low, high=self.high, **ode_options)
        scale = dims * jnp.log(2.0)
        return (discrete_bits_per_dim(out.mean, dims), out.stderr / scale, discrete_bits_per_dim(out.bound[0], dims),
                out.nfe, out.success)

    def samples(self, params, key, shape, *, method: str, num_steps: int, denoise: bool = False,
                stop_time=None, stop_ratio=None, return_nfe: bool = False, **options):
        """Images in ``[low, high]``. Gaussian: the reverse process (``samplers.SAMPLERS[method]``,
        ``options`` such as ``snr``, ``n_corrector``, ``solver``, ``rtol``) down to ``stop_time``
        (default: the decoding time), then either the decoder's most probable levels of ``z``
        (``denoise=False``) or Tweedie's posterior mean
        ``E[x(0) | x(stop_time)] = (z + std^2 s) / alpha`` (Efron 2011) rounded to the nearest level
        (``denoise=True``). ``stop_ratio``: stop where ``std / alpha`` is that many level spacings
        (``discrete_bound.decoder_time``) instead of at ``stop_time``. Uniform: down to
        ``sde.sampling_eps`` with Tweedie denoising, clipped. The NFE counts score evaluations."""
        sf = self.score_fn(params)
        if self.gaussian:
            if stop_ratio is not None:
                stop_time = decoder_time(self.sde, self.num_levels, self.low, self.high, stop_ratio)
            stop = self.eps if stop_time is None else stop_time
            z, nfe = sample(self.sde, sf, shape, key, method=method, num_steps=num_steps, eps=stop, return_nfe=True,
                            **options)
            if denoise:
                x0 = tweedie_denoise(self.sde, sf, z, jnp.asarray(stop, z.dtype))
                out = level_values(self.num_levels, self.low, self.high, z.dtype)[
                    grid_index(x0, self.num_levels, self.low, self.high)]
                nfe = nfe + 1
            else:
                alpha, std = self.sde.marginal_coeffs(jnp.asarray(stop, jnp.float32))
                out = decode_levels(z, alpha, std, self.num_levels, self.low, self.high)
        else:
            out, nfe = sample(self.sde, sf, shape, key, method=method, num_steps=num_steps, denoise=True,
                              return_nfe=True, **options)
        return (out, nfe) if return_nfe else out


def level_score_model(apply, sde, x_train_grid, num_levels: int, low: float, high: float, *,
                      dequantization: str = "gaussian", decoder_ratio: float = 0.2, base_score: str = "histogram",
                      uniform_eps: float = 1e-5, correction_scale: str = "alpha", correction_bound: float = 0.0,
                      prefix: str = "") -> LevelScoreModel:
    """The choices checked (``check_choices``), the decoding time and the base score built from the
    grid-valued training images ``x_train_grid``. Train with ``generative.make_task(model, sde,
    base=m.base, eps=m.eps, correction_scale=m.correction_scale, correction_bound=m.correction_bound, ...)``
    (Gaussian) on the grid images."""
    check_choices(dequantization, base_score, prefix)
    if correction_scale not in CORRECTION_SCALES:
        raise ConfigError(f"unknown {prefix}correction_scale {correction_scale!r}; valid: "
                          f"{', '.join(CORRECTION_SCALES)}")
    if not float(correction_bound) >= 0:
        raise ConfigError(f"{prefix}correction_bound must be >= 0 (0: unbounded), got {correction_bound}")
    gaussian = dequantization == "gaussian"
    eps = decoder_time(sde, num_levels, low, high, decoder_ratio) if gaussian else float(uniform_eps)
    base = FactorizedMixture.level_histogram(x_train_grid, num_levels, low, high) if base_score == "histogram" else None
    return LevelScoreModel(apply, sde, base, eps, gaussian, num_levels, float(low), float(high), correction_scale,
                           float(correction_bound))
