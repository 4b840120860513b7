"""Adaptive (diagonally preconditioned) rules: AdaGrad, RMSProp, Adam, AdamW.

Each divides the gradient coordinate-wise by a running estimate of its root mean square, so the
step of coordinate i is roughly η regardless of the scale of g_i. All operations below are
element-wise; ``g²`` is the element-wise square. Defaults follow optax.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from dl_course.optim.base import PyTree, is_static_zero, leafwise, require_params, rule, zeros_like_tree


class AdagradState(NamedTuple):
    """AdaGrad state: ``sum_of_squares`` s_t = Σ_{τ≤t} g_τ² (zeros at init)."""

    sum_of_squares: PyTree


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7) -> optax.GradientTransformationExtraArgs:
    r"""AdaGrad (Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization", JMLR 12).

    .. math::
        s_t = s_{t-1} + g_t^2 \;(s_0 = 0),\qquad
        \theta_{t+1} = \theta_t - \eta\,\frac{g_t}{\sqrt{a_0 + s_t + \epsilon}}

    (the factor is taken as 0 where :math:`a_0 + s_t = 0`). On a constant gradient g the step is
    :math:`\eta |g| / \sqrt{a_0 + t g^2 + \epsilon} \sim \eta/\sqrt t`.

    State: :class:`AdagradState`. The initial accumulator :math:`a_0` is added at update time
    instead of being stored, so ``init`` does not depend on it; otherwise this equals
    ``optax.adagrad(η, initial_accumulator_value=a_0, eps=ε)`` (up to float rounding order).

    Args:
      learning_rate: η.
      initial_accumulator_value: :math:`a_0 \ge 0`, default 0.1 (optax's).
      eps: ε inside the square root, default 1e-7 (optax's).
    """

    def init(params):
        return AdagradState(sum_of_squares=zeros_like_tree(params))

    def leaf(g, s):
        s = g * g + s
        total = s + initial_accumulator_value
        inv_sqrt = jnp.where(total > 0, jax.lax.rsqrt(total + eps), 0.0)
        return -learning_rate * (inv_sqrt * g), s

    def update(grads, state, params):
        del params
        updates, s = leafwise(leaf, grads, state.sum_of_squares)
        return updates, AdagradState(sum_of_squares=s)

    return rule(init, update)


class RMSPropState(NamedTuple):
    """RMSProp state: ``nu`` ν_t, the moving average of g² (zeros at init)."""

    nu: PyTree


def rmsprop(learning_rate, decay=0.9, eps=1e-8) -> optax.GradientTransformationExtraArgs:
    r"""RMSProp (Tieleman & Hinton 2012, "Lecture 6.5 — RMSProp", COURSERA: Neural Networks for
    Machine Learning).

    .. math::
        \nu_t = \rho\,\nu_{t-1} + (1-\rho)\, g_t^2 \;(\nu_0 = 0),\qquad
        \theta_{t+1} = \theta_t - \eta\,\frac{g_t}{\sqrt{\nu_t + \epsilon}}

    State: :class:`RMSPropState`. Equals ``optax.rmsprop(η, decay=ρ, eps=ε)`` (ε inside the square
    root, no bias correction, no centering or momentum). Note PyTorch's defaults differ
    (ρ = 0.99, ε = 1e-8 outside the root).

    Args:
      learning_rate: η.
      decay: ρ, default 0.9 (optax's).
      eps: ε, default 1e-8 (optax's).
    """

    def init(params):
        return RMSPropState(nu=zeros_like_tree(params))

    def leaf(g, nu):
        nu = (1 - decay) * g**2 + decay * nu
        return -learning_rate * (jax.lax.rsqrt(nu + eps) * g), nu

    def update(grads, state, params):
        del params
        updates, nu = leafwise(leaf, grads, state.nu)
        return updates, RMSPropState(nu=nu)

    return rule(init, update)


class AdamState(NamedTuple):
    """Adam / AdamW state: step ``count`` t (int32), first moment ``mu`` m_t, second ``nu`` v_t."""

    count: jax.Array
    mu: PyTree
    nu: PyTree


def _adam_rule(learning_rate, b1, b2, eps, weight_decay, name: str):
    def init(params):
        return AdamState(
            count=jnp.zeros([], jnp.int32), mu=zeros_like_tree(params), nu=zeros_like_tree(params)
        )

    def update(grads, state, params):
        decoupled = not is_static_zero(weight_decay)
        if decoupled:
            params = require_params(params, name, "decoupled weight decay subtracts ηλθ")
        count = optax.safe_increment(state.count)
        # 1 − β^t, as optax computes it (in the hyperparameter's precision, before the division).
        correction1 = 1 - b1**count
        correction2 = 1 - b2**count

        def leaf(g, m, v, *p):
            m = (1 - b1) * g + b1 * m
            v = (1 - b2) * g**2 + b2 * v
            direction = (m / correction1) / (jnp.sqrt(v / correction2) + eps)
            if decoupled:
                direction = direction + weight_decay * p[0]
            return (-learning_rate * direction, m, v, *p)  # params pass through unchanged

        # With decoupled decay, params ride along as a third input tree (upcast like the moments).
        extra = (params,) if decoupled else ()
        updates, mu, nu, *_ = leafwise(leaf, grads, state.mu, state.nu, *extra)
        return updates, AdamState(count=count, mu=mu, nu=nu)

    return rule(init, update)


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8) -> optax.GradientTransformationExtraArgs:
    r"""Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", ICLR), with bias
    correction.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \quad(m_0 = v_0 = 0),\\
        \hat m_t = \frac{m_t}{1-\beta_1^t},\quad \hat v_t = \frac{v_t}{1-\beta_2^t},\qquad
        \theta_{t+1} = \theta_t - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

    At t = 1, :math:`\hat m_1 = g_1` and :math:`\hat v_1 = g_1^2`, so every coordinate moves by
    :math:`\eta\,|g|/(|g|+\epsilon) \approx \eta` in the direction of :math:`-\mathrm{sign}(g)`;
    with ε = 0 the trajectory is invariant to rescaling the loss.

    State: :class:`AdamState`. Equals ``optax.adam(η, b1, b2, eps)`` (ε outside the root,
    ``eps_root = 0``).

    Args:
      learning_rate: η.
      b1: β₁, default 0.9.
      b2: β₂, default 0.999.
      eps: ε, default 1e-8.
    """
    return _adam_rule(learning_rate, b1, b2, eps, 0.0, "adam")


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4) -> optax.GradientTransformationExtraArgs:
    r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019, "Decoupled Weight Decay
    Regularization", ICLR).

    With :math:`m_t, v_t, \hat m_t, \hat v_t` as in :func:`adam`,

    .. math::
        \theta_{t+1} = \theta_t - \eta\left(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
        + \lambda\,\theta_t\right)

    The decay acts on the parameters directly; it is *not* added to the gradient (where Adam's
    preconditioner would rescale it, which is what ``adam`` on :math:`L + \tfrac\lambda2\|\theta\|^2`
    does). As in optax and PyTorch the decay is multiplied by the (scheduled) learning rate η, so
    the paper's schedule-multiplier form has :math:`\lambda_{\text{paper}} = \eta\lambda`.

    State: :class:`AdamState`. Equals ``optax.adamw(η, b1, b2, eps, weight_decay=λ)``.

    Args:
      learning_rate: η.
      b1: β₁, default 0.9.
      b2: β₂, default 0.999.
      eps: ε, default 1e-8.
      weight_decay: λ, default 1e-4 (optax's).
    """
    return _adam_rule(learning_rate, b1, b2, eps, weight_decay, "adamw")


__all__ = ["AdagradState", "AdamState", "RMSPropState", "adagrad", "adam", "adamw", "rmsprop"]
