"""The generalization-measure suite of Jiang et al. (2020, "Fantastic Generalization Measures and
Where to Find Them", ICLR) as one registry, computed for one run and vmappable over runs.

``GENERALIZATION_MEASURES`` maps a name to ``fn(run: MeasureRun) -> scalar``;
:func:`generalization_measures` evaluates a selection for one run's :class:`MeasureContext` (a
NamedTuple of arrays, so a sweep is ``jax.jit(jax.vmap(...))`` over a context with a leading run
axis; :func:`vmapped_generalization_measures` builds that function). Every value is oriented as
a complexity (larger predicts a larger generalization gap): flatness radii enter as ``1/r²``.
Quantities shared by several measures (margin, σ′, α′) are computed once per call.

Conventions: the model is evaluated with ``apply_fn(params, model_state, x)`` (eval mode:
dropout off, batch-norm running statistics); the loss is the mean softmax cross-entropy over the
measurement set ``(x, y)``, the error the mean 0-1 error; flatness deviations are measured on
``config.deviation_on`` ("error": Jiang et al.'s 0-1 training error, or "loss"); every parameter
leaf is perturbed. Each measure gets its own key ``fold_in(key, crc32(name))``, so a value does
not depend on which other measures are selected.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dl_course.measures.curvature.trace import hessian_trace
from dl_course.measures.generalization import complexity as C
from dl_course.measures.generalization.gradient_noise import gradient_noise
from dl_course.measures.sharpness import flatness as F
from dl_course.measures.sharpness.directional import lambda_max

PyTree = Any
ApplyFn = Callable[[PyTree, PyTree, jax.Array], jax.Array]


class MeasureContext(NamedTuple):
    """One run's inputs (all arrays/pytrees: vmappable; ``x, y`` usually shared, ``in_axes=None``).

    Attributes:
      params: trained parameters. init_params: the same run's initialization.
      model_state: non-trainable collections (e.g. ``{"batch_stats": ...}``; ``{}`` if none).
      x, y: the measurement set (training examples, integer labels).
      key: PRNG key of this run's stochastic measures.
    """

    params: PyTree
    init_params: PyTree
    model_state: PyTree
    x: jax.Array
    y: jax.Array
    key: jax.Array


class MeasureConfig(NamedTuple):
    """Static settings of the suite (hashable; closed over, never vmapped).

    Attributes:
      margin_quantile: ``γ`` is this quantile of the training margins (Jiang: 0.1).
      deviation, deviation_on: flatness radii keep the increase of the train ``"error"`` (Jiang)
        or ``"loss"`` at or below ``deviation`` (Jiang: 0.1).
      num_mc_samples: Monte-Carlo samples per PAC-Bayes evaluation (Jiang's code: 10).
      mc_batch_size: how many of them are evaluated at once (``lax.map``; default 1).
      num_bisection_steps, radius_min, radius_max: the log-bisection of σ′ and α′; relative
        resolution ``(radius_max/radius_min)^(2^-steps)``: 20 steps ≈ 1e-5, 12 steps ≈ 0.3%
        (coarse enough to tie similar models, which Kendall's τ then counts as ties).
      ascent_steps, ascent_step_size: projected ascent of the worst-case measures.
      magnitude_eps: ``ε`` of the magnitude-aware variants (Jiang: 1e-3).
      adaptive_rho_inf, adaptive_rho_2: radii of the adaptive sharpness (ours; Andriushchenko
        et al. tune ρ per setting).
      lanczos_iters, trace_samples: λmax (Lanczos) and Hutchinson trace of the loss Hessian.
      noise_batch_size: minibatch size of the gradient noise.
      num_train_examples: ``m`` in the bounds (default: the measurement set's size).
      fisher_rao_num_layers: include Jiang's ``(d+1)²`` factor in the Fisher–Rao norm if set.

    Cost per run, in loss evaluations on the measurement set: PAC-Bayes
    ``2 (num_bisection_steps + 1) num_mc_samples`` forward passes; worst-case sharpness
    ``2 (num_bisection_steps + 1) ascent_steps`` gradients (the largest share; sign ascent from 0
    needs ``1/ascent_step_size`` steps to reach the box's corner); adaptive sharpness
    ``2 ascent_steps`` gradients; λmax and trace ``lanczos_iters + trace_samples`` HVPs. A radius
    that hits ``radius_max`` (the objective cannot rise by ``deviation``, e.g. an untrained model
    at chance error) reads ``1/radius_max²``; one at ``radius_min``, ``1/radius_min²``.
    """

    margin_quantile: float = 0.1
    deviation: float = F.DEFAULT_DEVIATION
    deviation_on: str = "error"
    num_mc_samples: int = 16
    mc_batch_size: int | None = None
    num_bisection_steps: int = 20
    radius_min: float = 1e-5
    radius_max: float = 4.0
    ascent_steps: int = 20
    ascent_step_size: float = 0.1
    magnitude_eps: float = F.MAGNITUDE_EPS
    adaptive_rho_inf: float = 0.01
    adaptive_rho_2: float = 0.1
    lanczos_iters: int = 20
    trace_samples: int = 20
    noise_batch_size: int = 32
    num_train_examples: int | None = None
    fisher_rao_num_layers: int | None = None


class MeasureRun:
    """A run's context with the model functions and memoized shared quantities (built inside the
    traced function by :func:`generalization_measures`; not a pytree)."""

    def __init__(self, apply_fn: ApplyFn, ctx: MeasureContext, config: MeasureConfig):
        if config.deviation_on not in ("error", "loss"):
            raise ValueError(f"unknown deviation_on {config.deviation_on!r}; valid: ['error', 'loss']")
        self.apply_fn, self.ctx, self.config = apply_fn, ctx, config
        self.params, self.init_params = ctx.params, ctx.init_params
        self.num_examples = config.num_train_examples or ctx.x.shape[0]

    def logits(self, params: PyTree) -> jax.Array:
        return self.apply_fn(params, self.ctx.model_state, self.ctx.x)

    def example_losses(self, params: PyTree) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(self.logits(params), self.ctx.y)

    def loss(self, params: PyTree) -> jax.Array:
        return jnp.mean(self.example_losses(params))

    def error(self, params: PyTree) -> jax.Array:
        logits = self.logits(params)
        return jnp.mean((jnp.argmax(logits, axis=-1) != self.ctx.y).astype(logits.dtype))

    def deviation_fn(self, params: PyTree) -> jax.Array:
        return self.error(params) if self.config.deviation_on == "error" else self.loss(params)

    def batch_loss(self, params: PyTree, batch: tuple) -> jax.Array:
        x, y = batch
        logits = self.apply_fn(params, self.ctx.model_state, x)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

    def key(self, name: str) -> jax.Array:
        return jax.random.fold_in(self.ctx.key, zlib.crc32(name.encode()) & 0x7FFFFFFF)

    @functools.cached_property
    def norms(self) -> C.LayerNorms:
        return C.layer_norms(self.params, self.init_params)

    @functools.cached_property
    def margin(self) -> jax.Array:
        return C.output_margin(self.logits(self.params), self.ctx.y, self.config.margin_quantile)

    def _sigma(self, magnitude: bool) -> jax.Array:
        c = self.config
        return F.pacbayes_sigma(
            self.deviation_fn, self.params, key=self.key("pacbayes_mag" if magnitude else "pacbayes"),
            deviation=c.deviation, num_samples=c.num_mc_samples, num_bisection_steps=c.num_bisection_steps,
            sigma_min=c.radius_min, sigma_max=c.radius_max, magnitude_eps=c.magnitude_eps if magnitude else None,
            batch_size=c.mc_batch_size,
        ).radius

    @functools.cached_property
    def sigma(self) -> jax.Array:
        return self._sigma(False)

    @functools.cached_property
    def mag_sigma(self) -> jax.Array:
        return self._sigma(True)

    def alpha(self, magnitude: bool) -> jax.Array:
        c = self.config
        dev = None if c.deviation_on == "loss" else self.deviation_fn
        return F.sharpness_alpha(
            self.loss, self.params, deviation=c.deviation, deviation_fn=dev, num_steps=c.ascent_steps,
            step_size=c.ascent_step_size, num_bisection_steps=c.num_bisection_steps, alpha_min=c.radius_min,
            alpha_max=c.radius_max, magnitude_eps=c.magnitude_eps if magnitude else None,
        ).radius


def _path_apply(run: MeasureRun):
    return lambda p, x: run.apply_fn(p, run.ctx.model_state, x)


GENERALIZATION_MEASURES: dict[str, Callable[[MeasureRun], jax.Array]] = {
    # VC / output (Jiang et al. eqs. (20), (22)).
    "num_params": lambda r: jnp.asarray(C.num_parameters(r.params), jax.tree_util.tree_leaves(r.params)[0].dtype),
    "inverse_margin": lambda r: C.inverse_margin(r.margin),
    # Spectral (eqs. (29)–(35), (41)).
    "log_prod_of_spec": lambda r: C.log_prod_of_spec(r.norms),
    "log_prod_of_spec_over_margin": lambda r: C.log_prod_of_spec_over_margin(r.norms, r.margin),
    "log_sum_of_spec": lambda r: C.log_sum_of_spec(r.norms),
    "log_sum_of_spec_over_margin": lambda r: C.log_sum_of_spec_over_margin(r.norms, r.margin),
    "log_spec_init_main": lambda r: C.log_spec_init_main(r.norms, r.margin),
    "log_spec_orig_main": lambda r: C.log_spec_orig_main(r.norms, r.margin),
    "fro_over_spec": lambda r: C.fro_over_spec(r.norms),
    "dist_spec_init": lambda r: C.dist_spec_init(r.norms),
    # Frobenius (eqs. (36)–(40), (42)).
    "log_prod_of_fro": lambda r: C.log_prod_of_fro(r.norms),
    "log_prod_of_fro_over_margin": lambda r: C.log_prod_of_fro_over_margin(r.norms, r.margin),
    "log_sum_of_fro": lambda r: C.log_sum_of_fro(r.norms),
    "log_sum_of_fro_over_margin": lambda r: C.log_sum_of_fro_over_margin(r.norms, r.margin),
    "fro_dist": lambda r: C.fro_dist(r.norms),
    "param_norm": lambda r: C.param_norm(r.norms),
    # Path norm (eqs. (43)–(44)) and Fisher–Rao (Liang et al. 2019).
    "path_norm": lambda r: C.path_norm_sq(_path_apply(r), r.params, r.ctx.x.shape[1:]),
    "path_norm_over_margin": lambda r: C.path_norm_over_margin(_path_apply(r), r.params, r.ctx.x.shape[1:], r.margin),
    "fisher_rao": lambda r: C.fisher_rao_norm(r.example_losses, r.params, r.config.fisher_rao_num_layers),
    # PAC-Bayes flatness (eqs. (48), (49), (53); magnitude-aware (56), (57), (61)).
    "pacbayes_init": lambda r: F.pacbayes_bound(r.params, r.sigma, r.num_examples, r.init_params),
    "pacbayes_orig": lambda r: F.pacbayes_bound(r.params, r.sigma, r.num_examples),
    "pacbayes_flatness": lambda r: 1.0 / r.sigma**2,
    "pacbayes_mag_init": lambda r: F.pacbayes_mag_bound(
        r.params, r.init_params, r.mag_sigma, r.num_examples, r.init_params, r.config.magnitude_eps),
    "pacbayes_mag_orig": lambda r: F.pacbayes_mag_bound(
        r.params, r.init_params, r.mag_sigma, r.num_examples, None, r.config.magnitude_eps),
    "pacbayes_mag_flatness": lambda r: 1.0 / r.mag_sigma**2,
    # Worst-case sharpness (App. C.3, "sharpness.flatness", "sharpness.mag.flatness").
    "sharpness_flatness": lambda r: 1.0 / r.alpha(False) ** 2,
    "sharpness_mag_flatness": lambda r: 1.0 / r.alpha(True) ** 2,
    # Adaptive sharpness (Andriushchenko et al. 2023).
    "adaptive_sharpness_inf": lambda r: F.adaptive_sharpness(
        r.loss, r.params, r.config.adaptive_rho_inf, p="inf", num_steps=r.config.ascent_steps,
        step_size=r.config.ascent_step_size).increase,
    "adaptive_sharpness_2": lambda r: F.adaptive_sharpness(
        r.loss, r.params, r.config.adaptive_rho_2, p="2", num_steps=r.config.ascent_steps,
        step_size=r.config.ascent_step_size, key=r.key("adaptive_sharpness_2")).increase,
    # Curvature and gradient noise.
    "lambda_max": lambda r: lambda_max(r.loss, r.params, key=r.key("lambda_max"), num_iters=r.config.lanczos_iters)[0],
    "hessian_trace": lambda r: hessian_trace(
        r.loss, r.params, key=r.key("hessian_trace"), num_samples=r.config.trace_samples)[0],
    "gradient_noise": lambda r: gradient_noise(
        r.batch_loss, r.params, (r.ctx.x, r.ctx.y), min(r.config.noise_batch_size, r.ctx.x.shape[0]),
        key=r.key("gradient_noise")),
}

# Families for tables and figures (Jiang et al.'s grouping).
MEASURE_FAMILIES: dict[str, tuple[str, ...]] = {
    "vc_output": ("num_params", "inverse_margin"),
    "spectral": ("log_prod_of_spec", "log_prod_of_spec_over_margin", "log_sum_of_spec",
                 "log_sum_of_spec_over_margin", "log_spec_init_main", "log_spec_orig_main",
                 "fro_over_spec", "dist_spec_init"),
    "frobenius": ("log_prod_of_fro", "log_prod_of_fro_over_margin", "log_sum_of_fro",
                  "log_sum_of_fro_over_margin", "fro_dist", "param_norm"),
    "path_fisher": ("path_norm", "path_norm_over_margin", "fisher_rao"),
    "pacbayes": ("pacbayes_init", "pacbayes_orig", "pacbayes_flatness", "pacbayes_mag_init",
                 "pacbayes_mag_orig", "pacbayes_mag_flatness"),
    "sharpness": ("sharpness_flatness", "sharpness_mag_flatness", "adaptive_sharpness_inf",
                  "adaptive_sharpness_2"),
    "curvature_noise": ("lambda_max", "hessian_trace", "gradient_noise"),
}


def _check_names(names: Sequence[str] | None) -> tuple[str, ...]:
    if names is None:
        return tuple(GENERALIZATION_MEASURES)
    unknown = [n for n in names if n not in GENERALIZATION_MEASURES]
    if unknown:
        raise ValueError(f"unknown generalization measures {unknown}; valid: {list(GENERALIZATION_MEASURES)}")
    return tuple(names)


def generalization_measures(
    apply_fn: ApplyFn,
    ctx: MeasureContext,
    names: Sequence[str] | None = None,
    config: MeasureConfig = MeasureConfig(),
) -> dict[str, jax.Array]:
    """``{name: value}`` for one run, for ``names`` (default: all of ``GENERALIZATION_MEASURES``).

    ``apply_fn(params, model_state, x) -> logits`` (eval mode; e.g. the engine's
    ``Task.apply``). Pure and jit-able; vmap it over a context with a leading run axis (or use
    :func:`vmapped_generalization_measures`).
    """
    names = _check_names(names)
    run = MeasureRun(apply_fn, ctx, config)
    return {n: GENERALIZATION_MEASURES[n](run) for n in names}


def vmapped_generalization_measures(
    apply_fn: ApplyFn,
    names: Sequence[str] | None = None,
    config: MeasureConfig = MeasureConfig(),
) -> Callable[..., dict[str, jax.Array]]:
    """``jit(vmap(generalization_measures))`` over runs: the returned
    ``f(params, init_params, model_state, keys, x, y)`` takes stacked per-run ``params``,
    ``init_params``, ``model_state`` and ``keys`` (leading run axis) and one shared measurement
    set ``(x, y)``, and returns ``{name: [run]}``."""
    names = _check_names(names)

    def one(params, init_params, model_state, key, x, y):
        return generalization_measures(apply_fn, MeasureContext(params, init_params, model_state, x, y, key),
                                       names, config)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, None, None)))
