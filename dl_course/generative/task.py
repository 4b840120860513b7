"""The engine's ``Task`` for score-based models: ``dl_course.train.sweep(..., task=make_task(...))``.

``dl_course.train`` calls ``task.init(key, x) -> (params, model_state)`` and
``task.loss(params, model_state, batch, key, train) -> (loss, (model_state, metrics))``; here the
loss is a score-matching loss (``dl_course.generative.losses``) whose noise (times and Gaussian
perturbations) comes from ``key``, so each step and each run of a sweep draws its own noise.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_course.generative import losses
from dl_course.train import Task


def make_task(model: nn.Module, sde, *, loss: str = "dsm", parameterization: str = "eps", base=None,
              correction_scale: str = "alpha", correction_bound: float = 0.0, **loss_options) -> Task:
    """Task training the score network ``model`` (``__call__(x, t, train)``) with a score-matching loss.

    Args:
      model: a flax module, e.g. ``ScoreMLP`` / ``ScoreUNet``; parameters live in ``"params"``,
        dropout (if any) uses the rng stream ``"dropout"``; no mutable collections (the score nets
        normalise with GroupNorm, not BatchNorm).
      sde: the forward SDE (``VPSDE`` ...).
      loss: ``"dsm"`` (continuous time) or ``"ncsn"`` (discrete noise levels); ``loss_options`` go
        to it (``eps``, ``weighting``, ``reduce``, ``num_scales``).
      parameterization: how the network output becomes a score (``losses.make_score_fn``).
      base: an analytic score the network corrects (``losses.make_score_fn(base=...)``), or None.
      correction_scale, correction_bound: the correction's time factor (``"alpha"`` or ``"alpha2"``) and
        the smooth bound on its raw output (0: none), as in ``losses.make_score_fn``.
    ``batch["y"]`` is ignored. ``metrics`` is empty: the loss itself is the engine's ``*_loss``.
    """
    per_example = losses.get_loss(loss)
    if parameterization not in losses.PARAMETERIZATIONS:
        valid = ", ".join(sorted(losses.PARAMETERIZATIONS))
        raise ValueError(f"unknown parameterization {parameterization!r}; valid: {valid}")
    if correction_scale not in losses.CORRECTION_SCALES:
        raise ValueError(f"unknown correction_scale {correction_scale!r}; valid: {', '.join(losses.CORRECTION_SCALES)}")
    if not correction_bound >= 0:
        raise ValueError(f"correction_bound must be >= 0 (0: unbounded), got {correction_bound}")

    def init(key, x):
        k_params, k_dropout = jax.random.split(key)
        t = jnp.full(x.shape[:1], sde.T, x.dtype)
        variables = dict(model.init({"params": k_params, "dropout": k_dropout}, x, t, train=False))
        params = variables.pop("params")
        if variables:
            raise ValueError(f"score networks must not carry mutable state, got collections {sorted(variables)}")
        return params, {}

    def loss_fn(params, model_state, batch, key, train):
        k_dropout, k_loss = jax.random.split(key)
        score_fn = losses.make_score_fn(model.apply, params, sde, parameterization=parameterization,
                                        model_state=model_state, train=train, rngs={"dropout": k_dropout},
                                        base=base, correction_scale=correction_scale,
                                        correction_bound=correction_bound)
        value = jnp.mean(per_example(score_fn, batch["x"], k_loss, sde, **loss_options))
        return value, (model_state, {})

    return Task(init=init, loss=loss_fn, apply=None)
