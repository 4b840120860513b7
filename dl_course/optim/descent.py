r"""Gradient descent and its momentum variants: SGD, heavy-ball momentum, Nesterov momentum.

All three take an optional coupled ("L2-in-the-gradient") weight decay λ: the rule sees
:math:`\tilde g_t = g_t + \lambda \theta_t`, which is gradient descent on
:math:`L(\theta) + \tfrac{\lambda}{2}\|\theta\|^2`. (For decoupled decay see
:func:`dl_course.optim.adamw`.) The momentum buffer follows the optax / PyTorch convention: it
accumulates raw gradients and the learning rate multiplies it at each step, so with a constant
learning rate heavy ball is exactly Polyak's ``θ_{t+1} = θ_t − η g_t + β(θ_t − θ_{t−1})``.

State, as ``optax.sgd``'s: ``(TraceState(trace) or EmptyState(), lr_state)`` with ``lr_state``
``ScaleByScheduleState(count)`` for a scheduled η, else ``EmptyState()``. The decay adds no state.
``mask`` selects the decayed leaves as in ``optax.add_decayed_weights``.
"""

from __future__ import annotations

import optax

from dl_course.optim.base import canonical_dtype, leafwise, rule, zeros_like_tree
from dl_course.optim.stages import (
    add_decay,
    check_weight_decay,
    decay_inputs,
    lr_init,
    lr_step,
)

#: The heavy-ball / Nesterov buffer: optax's ``TraceState(trace)``, v_t = β v_{t−1} + g̃_t (raw, not
#: times η). Kept under this name for code written against earlier versions.
MomentumState = optax.TraceState


def _descent_rule(learning_rate, momentum, nesterov, accumulator_dtype, weight_decay, mask, name):
    check_weight_decay(weight_decay, name)
    accumulator_dtype = canonical_dtype(accumulator_dtype)
    has_trace = momentum is not None

    def init(params):
        first = optax.TraceState(trace=zeros_like_tree(params, accumulator_dtype)) if has_trace else optax.EmptyState()
        return first, lr_init(learning_rate)

    def update(grads, state, params):
        first, lr_state = state
        lr, lr_state = lr_step(learning_rate, lr_state)
        extra, flags = decay_inputs(params, weight_decay, mask, name)

        def leaf(g, *rest, flag=None):  # rest = (trace?, θ?); θ passes through unchanged
            v, p = (rest[0], rest[1:]) if has_trace else (None, rest)
            if p:
                g = add_decay(g, p[0], weight_decay, flag)
            if not has_trace:
                return (-lr * g, *p)
            v = g + momentum * v
            direction = g + momentum * v if nesterov else v
            return (-lr * direction, v, *p)

        traces = (first.trace,) if has_trace else ()
        updates, *new = leafwise(leaf, grads, *traces, *extra, flags=flags)
        first = optax.TraceState(trace=new[0]) if has_trace else first
        return updates, (first, lr_state)

    return rule(init, update)


def sgd(learning_rate, momentum=None, nesterov: bool = False, accumulator_dtype=None, weight_decay=0.0,
        mask=None) -> optax.GradientTransformationExtraArgs:
    r"""Stochastic gradient descent (Robbins & Monro 1951, "A Stochastic Approximation Method"),
    with optional momentum as ``optax.sgd``.

    .. math::
        \theta_{t+1} = \theta_t - \eta_t\,(g_t + \lambda\theta_t)

    With ``momentum=β`` it is :func:`momentum` (``nesterov=True``: :func:`nesterov`). Equals
    ``optax.sgd(η, momentum, nesterov, accumulator_dtype)`` (chained after
    ``optax.add_decayed_weights(λ, mask)`` when λ ≠ 0); same arguments in the same order.

    Args:
      learning_rate: η, a float, a traced scalar (the engine passes η·schedule(step)) or an optax
        schedule ``count -> η_t``.
      momentum: β, or None (default) for no momentum buffer. Not a sweep axis here; sweep it with
        the rule ``momentum``.
      nesterov: Nesterov's look-ahead form of momentum (static).
      accumulator_dtype: dtype of the momentum buffer ``trace`` (default: the parameter dtype).
      weight_decay: λ, coupled L2 weight decay. Default 0 (optax.sgd has none).
      mask: which leaves are decayed: a pytree of bools (a prefix of the parameters) or a callable
        ``params -> pytree``; default all.
    """
    return _descent_rule(learning_rate, momentum, nesterov, accumulator_dtype, weight_decay, mask, "sgd")


def momentum(learning_rate, momentum=0.9, weight_decay=0.0, mask=None,
             accumulator_dtype=None) -> optax.GradientTransformationExtraArgs:
    r"""Heavy-ball momentum (Polyak 1964, "Some methods of speeding up the convergence of iteration
    methods", USSR Comp. Math. & Math. Phys. 4(5)).

    .. math::
        \tilde g_t = g_t + \lambda\theta_t,\qquad
        v_t = \beta v_{t-1} + \tilde g_t \;(v_0 = 0),\qquad
        \theta_{t+1} = \theta_t - \eta_t\, v_t

    With constant η this is :math:`\theta_{t+1} = \theta_t - \eta\tilde g_t + \beta(\theta_t -
    \theta_{t-1})`. On the quadratic :math:`\tfrac a2\theta^2` it is stable iff
    :math:`0 < \eta a < 2(1+\beta)` (roots of :math:`z^2-(1+\beta-\eta a)z+\beta`).

    State: ``(TraceState(trace=v), lr_state)``, v zeros at init. Equals
    ``optax.sgd(η, momentum=β, accumulator_dtype=...)``.

    Args:
      learning_rate: η, a float, traced scalar or optax schedule.
      momentum: β, default 0.9 (optax.sgd takes it explicitly; 0.9 is the common choice).
      weight_decay: λ, coupled L2 weight decay, default 0.
      mask: which leaves are decayed (see :func:`sgd`); default all.
      accumulator_dtype: dtype of ``trace`` (default: the parameter dtype).
    """
    return _descent_rule(learning_rate, momentum, False, accumulator_dtype, weight_decay, mask, "momentum")


def nesterov(learning_rate, momentum=0.9, weight_decay=0.0, mask=None,
             accumulator_dtype=None) -> optax.GradientTransformationExtraArgs:
    r"""Nesterov accelerated gradient (Nesterov 1983, "A method for solving the convex programming
    problem with convergence rate O(1/k²)"), in the form of Sutskever et al. 2013 (ICML), "On the
    importance of initialization and momentum in deep learning", as used by optax and PyTorch.

    .. math::
        \tilde g_t = g_t + \lambda\theta_t,\qquad
        v_t = \beta v_{t-1} + \tilde g_t \;(v_0 = 0),\qquad
        \theta_{t+1} = \theta_t - \eta_t\,(\tilde g_t + \beta v_t)

    (the look-ahead gradient is approximated by the current one plus the momentum step, so no
    second gradient evaluation is needed). State: ``(TraceState(trace=v), lr_state)``. Equals
    ``optax.sgd(η, momentum=β, nesterov=True)``.

    Args:
      learning_rate: η, a float, traced scalar or optax schedule.
      momentum: β, default 0.9.
      weight_decay: λ, coupled L2 weight decay, default 0.
      mask: which leaves are decayed (see :func:`sgd`); default all.
      accumulator_dtype: dtype of ``trace`` (default: the parameter dtype).
    """
    return _descent_rule(learning_rate, momentum, True, accumulator_dtype, weight_decay, mask, "nesterov")


__all__ = ["MomentumState", "momentum", "nesterov", "sgd"]
