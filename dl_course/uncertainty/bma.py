"""Bayesian model averaging by Monte Carlo over posterior samples (Maddox et al. 2019, eq. 4;
Wilson & Izmailov 2020):

    p(y | x, D) ≈ (1/S) Σ_{s=1}^{S} p(y | x, θ_s),      θ_s ~ q(θ | D),   S = 30 by default.

Samples are drawn and evaluated with ``lax.map`` over sample keys, vmapped in chunks of
``chunk_size`` samples (memory ∝ chunk_size), so the whole average is one jittable program; it can
itself be vmapped over the runs of a sweep (MultiSWAG: one posterior per seed, then
``predictive.pool_runs``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax

from dl_course.uncertainty import swag as swag_lib
from dl_course.uncertainty.batchnorm import refresh_batch_stats
from dl_course.uncertainty.predictive import Predictive, map_batches


def bayesian_model_average(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    sample_fn: Callable[[jax.Array], Any],
    key: jax.Array,
    x: jax.Array,
    num_samples: int = 30,
    chunk_size: int | None = None,
    batch_size: int | None = None,
) -> Predictive:
    """Per-sample logits ``[S, N, K]`` of ``S = num_samples`` posterior samples on ``x``.

    Sample s uses ``variables_s = sample_fn(key_s)`` with ``key_s = jax.random.split(key, S)[s]``
    and logits ``apply_fn(variables_s, x)`` (in input batches of ``batch_size``). The model average
    is ``Predictive.probs``; epistemic uncertainty ``calibration.mutual_information``.
    """
    keys = jax.random.split(key, num_samples)

    def one(k):
        variables = sample_fn(k)
        return map_batches(lambda xb, _: apply_fn(variables, xb), x, batch_size)

    return Predictive(jax.lax.map(one, keys, batch_size=chunk_size))


def swag_predictive(
    model: nn.Module,
    state: swag_lib.SWAGState,
    model_state: dict[str, Any],
    x: jax.Array,
    key: jax.Array,
    *,
    method: str = "swag",
    num_samples: int = 30,
    scale: float | None = None,
    x_refresh: jax.Array | None = None,
    refresh_batch_size: int = 256,
    chunk_size: int | None = None,
    batch_size: int | None = None,
) -> Predictive:
    """SWA / SWAG-diagonal / SWAG predictive of one run (Maddox et al. 2019).

    Each of the ``num_samples`` samples (S = 30 by default; S = 1 for ``swa``, which is a point
    estimate) draws θ_s with ``swag.sample(state, ·, method, scale)`` (default scales: 1 for
    swag_diag, ½ for swag) and, when ``model_state`` has ``batch_stats``, recomputes them for θ_s on
    ``x_refresh`` (the training inputs) with ``refresh_batch_stats`` before predicting in eval mode.
    """
    has_bn = bool(jax.tree_util.tree_leaves(model_state.get("batch_stats", {})))
    if has_bn and x_refresh is None:
        raise ValueError("This model has batch_stats: pass x_refresh (training inputs) to recompute them.")
    if method == "swa":
        num_samples = 1

    def sample_fn(k):
        k_theta, k_bn = jax.random.split(k)
        params = swag_lib.sample(state, k_theta, method, scale)
        ms = model_state
        if has_bn:
            ms = refresh_batch_stats(model, params, model_state, x_refresh, refresh_batch_size, k_bn)
        return {**ms, "params": params}

    def apply_fn(variables, xb):
        return model.apply(variables, xb, train=False)

    return bayesian_model_average(apply_fn, sample_fn, key, x, num_samples, chunk_size, batch_size)
