"""Learning-rate schedules as *shapes*: ``s(step) -> multiplier``, with the peak left to the sweep.

The learning rate at step t is ``lr_t = learning_rate * s(t)``: the schedule fixes only the shape
(static: ``total_steps``, boundaries, warmup length), while the peak ``learning_rate`` is a traced
per-run hyperparameter. A sweep over learning rates therefore shares one compiled program, and the
update rules receive ``lr_t`` as their ``learning_rate`` argument. Every shape equals the matching
optax schedule built with peak value 1.0. ``step`` may be a Python int or a traced integer array;
the multiplier has the default float dtype.

:func:`scheduled` applies a shape to a rule outside the engine (it keeps its own step count).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

Schedule = Callable[[jax.typing.ArrayLike], jax.Array]


def _as_float(step: jax.typing.ArrayLike) -> jax.Array:
    return jnp.asarray(step).astype(jnp.result_type(float))


def _check_total(total_steps: int) -> int:
    if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps <= 0:
        raise ValueError(f"total_steps must be a positive int, got {total_steps!r}.")
    return total_steps


def constant_schedule(total_steps: int | None = None) -> Schedule:
    """s(t) = 1: the learning rate is the swept peak throughout. ``total_steps`` is unused."""
    del total_steps
    return lambda step: jnp.ones_like(_as_float(step))


def step_schedule(total_steps: int, boundaries: Sequence[float] = (0.5, 0.75), factor: float = 0.1) -> Schedule:
    r"""Piecewise-constant decay: :math:`s(t) = \gamma^{\#\{k:\ t \ge b_k\}}`, with
    :math:`b_k = \mathrm{round}(f_k \cdot T)`.

    The multiplier is multiplied by γ = ``factor`` at each boundary step (from that step on), as in
    the step decays of He et al. 2016 ("Deep Residual Learning for Image Recognition", CVPR).
    Equals ``optax.piecewise_constant_schedule(1.0, {b_k: γ})``.

    Args:
      total_steps: T.
      boundaries: fractions :math:`0 < f_1 < f_2 < \dots \le 1` of T; default (0.5, 0.75).
      factor: γ ≥ 0, default 0.1.
    """
    total_steps = _check_total(total_steps)
    fractions = tuple(float(f) for f in boundaries)
    if any(not 0.0 < f <= 1.0 for f in fractions) or list(fractions) != sorted(set(fractions)):
        raise ValueError(f"boundaries must be strictly increasing fractions in (0, 1], got {boundaries!r}.")
    if factor < 0:
        raise ValueError(f"factor must be >= 0, got {factor!r}.")
    steps = tuple(round(f * total_steps) for f in fractions)

    def schedule(step):
        step = jnp.asarray(step)
        passed = sum((jnp.where(step >= b, 1, 0) for b in steps), jnp.zeros_like(step))
        return jnp.asarray(factor, jnp.result_type(float)) ** passed

    return schedule


def cosine_schedule(total_steps: int, alpha: float = 0.0) -> Schedule:
    r"""Cosine decay (Loshchilov & Hutter 2017, "SGDR: Stochastic Gradient Descent with Warm
    Restarts", ICLR), without restarts, from 1 to α:

    .. math::
        s(t) = \alpha + (1-\alpha)\,\tfrac12\big(1 + \cos(\pi \min(t, T)/T)\big)

    Equals ``optax.cosine_decay_schedule(1.0, decay_steps=T, alpha=α)``.

    Args:
      total_steps: T.
      alpha: final multiplier α (the learning rate ends at α·peak), default 0.
    """
    total_steps = _check_total(total_steps)

    def schedule(step):
        t = jnp.minimum(_as_float(step), total_steps)
        return (1 - alpha) * (0.5 * (1 + jnp.cos(jnp.pi * t / total_steps))) + alpha

    return schedule


def _warmup_steps(total_steps: int, warmup_steps: int | None) -> int:
    if warmup_steps is None:
        warmup_steps = max(1, total_steps // 10)
    if not isinstance(warmup_steps, int) or not 0 < warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be an int in [1, total_steps={total_steps}], got {warmup_steps!r}.")
    return warmup_steps


def _linear_ramp(t: jax.Array, init_value: float, warmup_steps: int) -> jax.Array:
    fraction = jnp.clip(t / warmup_steps, 0.0, 1.0)
    return init_value + (1 - init_value) * fraction


def warmup_schedule(total_steps: int, warmup_steps: int | None = None, init_value: float = 0.0) -> Schedule:
    r"""Linear warmup to the peak, then constant (Goyal et al. 2017, "Accurate, Large Minibatch SGD:
    Training ImageNet in 1 Hour"):

    .. math::
        s(t) = s_0 + (1 - s_0)\min(t/W, 1)

    Equals ``optax.linear_schedule(s_0, 1.0, transition_steps=W)``.

    Args:
      total_steps: T (used only for the default W).
      warmup_steps: W, default ``max(1, T // 10)``.
      init_value: :math:`s_0`, the multiplier at step 0, default 0.
    """
    total_steps = _check_total(total_steps)
    warmup_steps = _warmup_steps(total_steps, warmup_steps)
    return lambda step: _linear_ramp(_as_float(step), init_value, warmup_steps)


def warmup_cosine_schedule(
    total_steps: int, warmup_steps: int | None = None, init_value: float = 0.0, alpha: float = 0.0
) -> Schedule:
    r"""Linear warmup over W steps, then cosine decay to α over the remaining T − W steps:

    .. math::
        s(t) = \begin{cases} s_0 + (1-s_0)\,t/W & t < W \\
        \alpha + (1-\alpha)\tfrac12\big(1+\cos(\pi\min(t-W, T-W)/(T-W))\big) & t \ge W\end{cases}

    Equals ``optax.warmup_cosine_decay_schedule(s_0, 1.0, W, decay_steps=T, end_value=α)``.

    Args:
      total_steps: T, including the warmup (T > W).
      warmup_steps: W, default ``max(1, T // 10)``.
      init_value: :math:`s_0`, default 0.
      alpha: final multiplier α, default 0.
    """
    total_steps = _check_total(total_steps)
    warmup_steps = _warmup_steps(total_steps, warmup_steps)
    if warmup_steps >= total_steps:
        raise ValueError(f"warmup_cosine needs warmup_steps < total_steps, got {warmup_steps} >= {total_steps}.")
    decay = cosine_schedule(total_steps - warmup_steps, alpha)

    def schedule(step):
        t = _as_float(step)
        return jnp.where(t < warmup_steps, _linear_ramp(t, init_value, warmup_steps), decay(t - warmup_steps))

    return schedule


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": constant_schedule,
    "step": step_schedule,
    "cosine": cosine_schedule,
    "warmup": warmup_schedule,
    "warmup_cosine": warmup_cosine_schedule,
}


def get_schedule(name: str, total_steps: int, **kwargs) -> Schedule:
    """The shape ``s(step)`` registered as ``name``, built for ``total_steps`` with ``kwargs``.

    Raises:
      ValueError: for an unknown name, listing the valid ones.
    """
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; valid: {sorted(SCHEDULES)}.")
    return SCHEDULES[name](total_steps, **kwargs)


class ScheduledState(NamedTuple):
    """State of :func:`scheduled`: the step ``count`` (int32) and the inner rule's state."""

    count: jax.Array
    inner: Any


def scheduled(factory: Callable[..., optax.GradientTransformation], schedule: Schedule, learning_rate, **hparams):
    r"""A rule whose learning rate follows ``learning_rate * schedule(t)``, t = 0, 1, 2, ...

    At every update the rule is rebuilt as ``factory(learning_rate * schedule(count), **hparams)``,
    exactly what the training engine does with its own step counter; use this outside the engine
    (notebooks, tests). ``learning_rate`` and ``hparams`` may be traced, so ``jax.vmap`` over them
    shares one compiled program. ``scheduled(adam, get_schedule("cosine", T), lr)`` equals
    ``optax.adam(optax.cosine_decay_schedule(lr, T))``.

    State: :class:`ScheduledState`.
    """

    def build(count):
        return factory(learning_rate * schedule(count), **hparams)

    def init(params):
        count = jnp.zeros([], jnp.int32)
        return ScheduledState(count=count, inner=build(count).init(params))

    def update(updates, state, params=None, **extra_args):
        updates, inner = build(state.count).update(updates, state.inner, params, **extra_args)
        return updates, ScheduledState(count=optax.safe_increment(state.count), inner=inner)

    return optax.GradientTransformationExtraArgs(init, update)


__all__ = [
    "SCHEDULES",
    "Schedule",
    "ScheduledState",
    "constant_schedule",
    "cosine_schedule",
    "get_schedule",
    "scheduled",
    "step_schedule",
    "warmup_cosine_schedule",
    "warmup_schedule",
]
