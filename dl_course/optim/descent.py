r"""Gradient descent and its momentum variants: SGD, heavy-ball momentum, Nesterov momentum.

All three take an optional coupled ("L2-in-the-gradient") weight decay λ: the rule sees
:math:`\tilde g_t = g_t + \lambda \theta_t`, which is gradient descent on
:math:`L(\theta) + \tfrac{\lambda}{2}\|\theta\|^2`. (For decoupled decay see
:func:`dl_course.optim.adamw`.) The momentum buffer follows the optax / PyTorch convention: it
accumulates raw gradients and the learning rate multiplies it at each step, so with a constant
learning rate heavy ball is exactly Polyak's ``θ_{t+1} = θ_t − η g_t + β(θ_t − θ_{t−1})``.
"""

from __future__ import annotations

from typing import NamedTuple

import optax

from dl_course.optim.base import PyTree, is_static_zero, leafwise, require_params, rule, zeros_like_tree


def _decay_inputs(params: PyTree | None, weight_decay, name: str) -> tuple[PyTree, ...]:
    """The extra input trees of a rule with coupled decay: ``(params,)``, or ``()`` (params not
    needed) when λ is the Python number 0."""
    if is_static_zero(weight_decay):
        return ()
    return (require_params(params, name, "weight_decay adds λθ to the gradient"),)


def sgd(learning_rate, weight_decay=0.0) -> optax.GradientTransformationExtraArgs:
    r"""Stochastic gradient descent (Robbins & Monro 1951, "A Stochastic Approximation Method").

    .. math::
        \theta_{t+1} = \theta_t - \eta\,(g_t + \lambda\theta_t)

    State: none (``optax.EmptyState``). Equals ``optax.sgd(η)`` (chained after
    ``optax.add_decayed_weights(λ)`` when λ ≠ 0).

    Args:
      learning_rate: η, a float or traced scalar (the engine passes η·schedule(step)).
      weight_decay: λ, coupled L2 weight decay. Default 0 (optax.sgd has none).
    """

    def leaf(g, *p):  # p = (θ,) when there is weight decay; passed through unchanged
        if p:
            g = g + weight_decay * p[0]
        return (-learning_rate * g, *p)

    def update(grads, state, params):
        updates, *_ = leafwise(leaf, grads, *_decay_inputs(params, weight_decay, "sgd"))
        return updates, state

    return rule(lambda params: optax.EmptyState(), update)


class MomentumState(NamedTuple):
    """Heavy-ball / Nesterov state: the velocity ``v_t = β v_{t−1} + g̃_t`` (raw, not times η)."""

    velocity: PyTree


def _momentum_rule(learning_rate, beta, weight_decay, nesterov: bool, name: str):
    def init(params):
        return MomentumState(velocity=zeros_like_tree(params))

    def leaf(g, v, *p):  # p = (θ,) when there is weight decay; passed through unchanged
        if p:
            g = g + weight_decay * p[0]
        v = g + beta * v
        direction = g + beta * v if nesterov else v
        return (-learning_rate * direction, v, *p)

    def update(grads, state, params):
        updates, velocity, *_ = leafwise(leaf, grads, state.velocity, *_decay_inputs(params, weight_decay, name))
        return updates, MomentumState(velocity=velocity)

    return rule(init, update)


def momentum(learning_rate, momentum=0.9, weight_decay=0.0) -> optax.GradientTransformationExtraArgs:
    r"""Heavy-ball momentum (Polyak 1964, "Some methods of speeding up the convergence of iteration
    methods", USSR Comp. Math. & Math. Phys. 4(5)).

    .. math::
        \tilde g_t = g_t + \lambda\theta_t,\qquad
        v_t = \beta v_{t-1} + \tilde g_t \;(v_0 = 0),\qquad
        \theta_{t+1} = \theta_t - \eta\, v_t

    With constant η this is :math:`\theta_{t+1} = \theta_t - \eta\tilde g_t + \beta(\theta_t -
    \theta_{t-1})`. On the quadratic :math:`\tfrac a2\theta^2` it is stable iff
    :math:`0 < \eta a < 2(1+\beta)` (roots of :math:`z^2-(1+\beta-\eta a)z+\beta`).

    State: :class:`MomentumState` (``velocity``, zeros at init). Equals
    ``optax.sgd(η, momentum=β)``.

    Args:
      learning_rate: η.
      momentum: β, default 0.9 (optax.sgd takes it explicitly; 0.9 is the common choice).
      weight_decay: λ, coupled L2 weight decay, default 0.
    """
    return _momentum_rule(learning_rate, momentum, weight_decay, nesterov=False, name="momentum")


def nesterov(learning_rate, momentum=0.9, weight_decay=0.0) -> optax.GradientTransformationExtraArgs:
    r"""Nesterov accelerated gradient (Nesterov 1983, "A method for solving the convex programming
    problem with convergence rate O(1/k²)"), in the form of Sutskever et al. 2013 (ICML), "On the
    importance of initialization and momentum in deep learning", as used by optax and PyTorch.

    .. math::
        \tilde g_t = g_t + \lambda\theta_t,\qquad
        v_t = \beta v_{t-1} + \tilde g_t \;(v_0 = 0),\qquad
        \theta_{t+1} = \theta_t - \eta\,(\tilde g_t + \beta v_t)

    (the look-ahead gradient is approximated by the current one plus the momentum step, so no
    second gradient evaluation is needed). State: :class:`MomentumState`. Equals
    ``optax.sgd(η, momentum=β, nesterov=True)``.

    Args:
      learning_rate: η.
      momentum: β, default 0.9.
      weight_decay: λ, coupled L2 weight decay, default 0.
    """
    return _momentum_rule(learning_rate, momentum, weight_decay, nesterov=True, name="nesterov")


__all__ = ["MomentumState", "momentum", "nesterov", "sgd"]
