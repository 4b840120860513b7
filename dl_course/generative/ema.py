"""Exponential moving average of the weights (Polyak & Juditsky 1992; the "EMA" of score models,
Song & Ermon 2020 and Song et al. 2021, whose samples and likelihoods are computed with the EMA).

After optimizer step ``n`` with parameters ``theta_n`` the debiased average is

    bar_theta_n = sum_{i <= n} decay^(n - i) theta_i / sum_{i <= n} decay^(n - i),

computed by ``bar <- bar + (1 - decay) / (1 - decay^m) (theta - bar)`` over the ``m``-th update
(the bias correction of Kingma & Ba 2015: early averages are not pulled towards the
initialisation). Updates start at ``start_step`` (steps before it are not averaged).
``ema`` follows optax's init/update pattern; ``ema_hook`` carries it through ``dl_course.train.sweep``
(final state in ``SweepResult.state.extras[<name>]``, leading run axis; ``ema_params`` reads it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from dl_course.train import Hook, HookContext


class EMAState(NamedTuple):
    """``average``: the debiased average (equal to the initial parameters before any update);
    ``count``: number of averaged steps."""

    average: Any
    count: Any


class EMA(NamedTuple):
    init: Callable[[Any], EMAState]
    update: Callable[[EMAState, Any, Any], EMAState]


def ema(decay: float = 0.999, *, start_step: int = 0) -> EMA:
    """Debiased EMA with ``decay`` (module docstring); ``update(state, params, step)`` averages when
    ``step >= start_step``. ``decay`` may be traced (e.g. vmapped over runs)."""

    def init(params) -> EMAState:
        return EMAState(jax.tree.map(jnp.asarray, params), jnp.zeros((), jnp.int32))

    def update(state: EMAState, params, step) -> EMAState:
        active = jnp.asarray(step) >= start_step
        count = state.count + active.astype(jnp.int32)
        d = jnp.asarray(decay, jnp.result_type(float))
        rate = jnp.where(active, (1 - d) / (1 - d ** jnp.maximum(count, 1)), 0.0)
        average = jax.tree.map(lambda a, p: a + rate.astype(a.dtype) * (p - a), state.average, params)
        return EMAState(average, count)

    return EMA(init, update)


def ema_params(state: EMAState):
    """The averaged parameters."""
    return state.average


def ema_hook(decay: float = 0.999, *, start_step: int = 0) -> Hook:
    """``ema(...)`` as an engine hook: ``on_step`` averages ``ctx.params`` after every step."""
    averager = ema(decay, start_step=start_step)

    def init(ctx: HookContext) -> EMAState:
        return averager.init(ctx.params)

    def on_step(state: EMAState, ctx: HookContext) -> EMAState:
        return averager.update(state, ctx.params, ctx.step)

    return Hook(init=init, on_step=on_step)
