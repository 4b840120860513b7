"""Adaptive (diagonally preconditioned) rules: AdaGrad, RMSProp, Adam, AdamW.

Each divides the gradient coordinate-wise by a running estimate of its root mean square, so the
step of coordinate i is roughly η regardless of the scale of g_i. All operations below are
element-wise; ``g²`` is the element-wise squared magnitude :math:`|g|^2` (complex-safe, as optax).
Defaults, argument order and state (optax's state classes, in optax's chain order, with
``lr_state`` = ``ScaleByScheduleState(count)`` for a scheduled η, else ``EmptyState()``) follow optax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from dl_course.optim.base import (
    abs_sq,
    canonical_dtype,
    full_like_tree,
    leafwise,
    rule,
    zeros_like_tree,
)
from dl_course.optim.stages import (
    add_decay,
    check_weight_decay,
    decay_init,
    decay_inputs,
    lr_init,
    lr_step,
)

#: State classes, optax's own (kept under these names for code written against earlier versions).
AdagradState = optax.ScaleByRssState
RMSPropState = optax.ScaleByRmsState
AdamState = optax.ScaleByAdamState


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7) -> optax.GradientTransformationExtraArgs:
    r"""AdaGrad (Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization", JMLR 12).

    .. math::
        s_t = s_{t-1} + g_t^2 \;(s_0 = a_0),\qquad
        \theta_{t+1} = \theta_t - \eta_t\,\frac{g_t}{\sqrt{s_t + \epsilon}}

    (the factor is taken as 0 where :math:`s_t = 0`). On a constant gradient g the step is
    :math:`\eta |g| / \sqrt{a_0 + t g^2 + \epsilon} \sim \eta/\sqrt t`.

    State: ``(ScaleByRssState(sum_of_squares=s_t), lr_state)``, :math:`s_0 = a_0` stored as optax
    stores it. Equals ``optax.adagrad(η, initial_accumulator_value=a_0, eps=ε)``.

    Args:
      learning_rate: η, a float, traced scalar or optax schedule.
      initial_accumulator_value: :math:`a_0 \ge 0`, default 0.1 (optax's).
      eps: ε inside the square root, default 1e-7 (optax's).
    """

    def init(params):
        return optax.ScaleByRssState(sum_of_squares=full_like_tree(params, initial_accumulator_value)), lr_init(
            learning_rate)

    def update(grads, state, params):
        del params
        rss, lr_state = state
        lr, lr_state = lr_step(learning_rate, lr_state)

        def leaf(g, s):
            s = abs_sq(g) + s
            inv_sqrt = jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0)
            return -lr * (inv_sqrt * g), s

        updates, s = leafwise(leaf, grads, rss.sum_of_squares)
        return updates, (optax.ScaleByRssState(sum_of_squares=s), lr_state)

    return rule(init, update)


def rmsprop(learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True, centered: bool = False,
            momentum=None, nesterov: bool = False) -> optax.GradientTransformationExtraArgs:
    r"""RMSProp (Tieleman & Hinton 2012, "Lecture 6.5 — RMSProp", COURSERA: Neural Networks for
    Machine Learning); centered as in Graves 2013 ("Generating Sequences With Recurrent Neural
    Networks", arXiv:1308.0850).

    .. math::
        \nu_t = \rho\,\nu_{t-1} + (1-\rho)\, g_t^2 \;(\nu_0 = \nu_{\text{init}}),\qquad
        u_t = -\eta_t\,\frac{g_t}{\sqrt{\nu_t + \epsilon}},\qquad
        \theta_{t+1} = \theta_t + u_t

    (``eps_in_sqrt=False``: :math:`\sqrt{\nu_t} + \epsilon` in the denominator). ``centered``
    subtracts the squared mean gradient, :math:`\mu_t = \rho\mu_{t-1} + (1-\rho) g_t`, under the
    root: :math:`\sqrt{\nu_t - |\mu_t|^2 + \epsilon}`. With ``momentum=β`` the step is the trace
    of the scaled updates, :math:`m_t = u_t + \beta m_{t-1}`, :math:`\theta_{t+1} = \theta_t + m_t`
    (``nesterov``: :math:`u_t + \beta m_t`), as optax orders it (momentum after the learning rate).

    State: ``(ScaleByRmsState(nu) or ScaleByRStdDevState(mu, nu), lr_state, TraceState(trace)
    or EmptyState())``. Equals ``optax.rmsprop(η, decay=ρ, eps=ε, initial_scale, eps_in_sqrt,
    centered, momentum=β, nesterov)``, same argument order (optax's last option,
    ``bias_correction``, is not offered). Note PyTorch's defaults differ (ρ = 0.99, ε = 1e-8
    outside the root).

    Args:
      learning_rate: η, a float, traced scalar or optax schedule.
      decay: ρ, default 0.9 (optax's).
      eps: ε, default 1e-8 (optax's).
      initial_scale: :math:`\nu_{\text{init}}`, default 0.
      eps_in_sqrt: ε inside the square root (default, optax's) or outside (static).
      centered: subtract the squared running mean of the gradient (static).
      momentum: β, or None (default) for no momentum.
      nesterov: Nesterov form of the momentum (static).
    """
    has_trace = momentum is not None

    def init(params):
        nu = full_like_tree(params, initial_scale)
        first = optax.ScaleByRStdDevState(mu=zeros_like_tree(params), nu=nu) if centered else optax.ScaleByRmsState(nu=nu)
        trace = optax.TraceState(trace=zeros_like_tree(params)) if has_trace else optax.EmptyState()
        return first, lr_init(learning_rate), trace

    def update(grads, state, params):
        del params
        first, lr_state, trace = state
        lr, lr_state = lr_step(learning_rate, lr_state)

        def leaf(g, nu, *rest):  # rest = (mean μ if centered, trace m if momentum)
            rest = list(rest)
            nu = (1 - decay) * abs_sq(g) + decay * nu
            spread = nu
            if centered:
                mu = (1 - decay) * g + decay * rest.pop(0)
                spread = nu - abs_sq(mu)
            scaling = jax.lax.rsqrt(spread + eps) if eps_in_sqrt else 1 / (jnp.sqrt(spread) + eps)
            u = -lr * (scaling * g)
            new = [nu, mu] if centered else [nu]
            if has_trace:
                m = u + momentum * rest.pop(0)
                u = u + momentum * m if nesterov else m
                new.append(m)
            return (u, *new)

        inputs = [first.nu] + ([first.mu] if centered else []) + ([trace.trace] if has_trace else [])
        updates, nu, *rest = leafwise(leaf, grads, *inputs)
        first = optax.ScaleByRStdDevState(mu=rest.pop(0), nu=nu) if centered else optax.ScaleByRmsState(nu=nu)
        trace = optax.TraceState(trace=rest.pop(0)) if has_trace else trace
        return updates, (first, lr_state, trace)

    return rule(init, update)


def _adam_rule(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov, weight_decay, mask, name: str):
    decoupled = name == "adamw"
    check_weight_decay(weight_decay, name)
    mu_dtype = canonical_dtype(mu_dtype)

    def init(params):
        adam = optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros_like_tree(params, mu_dtype),
                                      nu=zeros_like_tree(params))
        if decoupled:
            return adam, decay_init(mask), lr_init(learning_rate)
        return adam, lr_init(learning_rate)

    def update(grads, state, params):
        adam, *decay_state, lr_state = state
        lr, lr_state = lr_step(learning_rate, lr_state)
        extra, flags = decay_inputs(params, weight_decay, mask, name) if decoupled else ((), None)
        count = optax.safe_increment(adam.count)
        # 1 − β^t, as optax computes it (in the hyperparameter's precision, before the division).
        correction1 = 1 - b1**count
        correction2 = 1 - b2**count
        next_correction1 = 1 - b1 ** optax.safe_increment(count) if nesterov else None

        def leaf(g, m, v, *p, flag=None):  # p = (θ,) with decoupled decay; passed through unchanged
            m = (1 - b1) * g + b1 * m
            v = (1 - b2) * abs_sq(g) + b2 * v
            if nesterov:  # NAdam (Dozat 2016), as optax.adam(nesterov=True)
                m_hat = b1 * (m / next_correction1) + (1 - b1) * (g / correction1)
            else:
                m_hat = m / correction1
            direction = m_hat / (jnp.sqrt(v / correction2 + eps_root) + eps)
            if p:
                direction = add_decay(direction, p[0], weight_decay, flag)
            return (-lr * direction, m, v, *p)

        updates, mu, nu, *_ = leafwise(leaf, grads, adam.mu, adam.nu, *extra, flags=flags)
        return updates, (optax.ScaleByAdamState(count=count, mu=mu, nu=nu), *decay_state, lr_state)

    return rule(init, update)


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
         nesterov: bool = False) -> optax.GradientTransformationExtraArgs:
    r"""Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", ICLR), with bias
    correction.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2 \quad(m_0 = v_0 = 0),\\
        \hat m_t = \frac{m_t}{1-\beta_1^t},\quad \hat v_t = \frac{v_t}{1-\beta_2^t},\qquad
        \theta_{t+1} = \theta_t - \eta_t\,\frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{\text{root}}} + \epsilon}

    At t = 1, :math:`\hat m_1 = g_1` and :math:`\hat v_1 = g_1^2`, so every coordinate moves by
    :math:`\eta\,|g|/(|g|+\epsilon) \approx \eta` in the direction of :math:`-\mathrm{sign}(g)`;
    with ε = 0 the trajectory is invariant to rescaling the loss. ``nesterov=True`` is NAdam
    (Dozat 2016, "Incorporating Nesterov Momentum into Adam", ICLR workshop):
    :math:`\hat m_t = \beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`.

    State: ``(ScaleByAdamState(count, mu, nu), lr_state)``. Equals ``optax.adam(η, b1, b2, eps,
    eps_root, mu_dtype, nesterov=...)``.

    Args:
      learning_rate: η, a float, traced scalar or optax schedule.
      b1: β₁, default 0.9.
      b2: β₂, default 0.999.
      eps: ε, default 1e-8.
      eps_root: :math:`\epsilon_{\text{root}}` inside the root, default 0.
      mu_dtype: dtype of the first moment ``mu`` (default: the parameter dtype).
      nesterov: NAdam's first moment (static).
    """
    return _adam_rule(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov, 0.0, None, "adam")


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, weight_decay=1e-4, mask=None,
          nesterov: bool = False) -> optax.GradientTransformationExtraArgs:
    r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019, "Decoupled Weight Decay
    Regularization", ICLR).

    With :math:`m_t, v_t, \hat m_t, \hat v_t` as in :func:`adam`,

    .. math::
        \theta_{t+1} = \theta_t - \eta_t\left(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
        + \lambda\,\theta_t\right)

    The decay acts on the parameters directly; it is *not* added to the gradient (where Adam's
    preconditioner would rescale it, which is what ``adam`` on :math:`L + \tfrac\lambda2\|\theta\|^2`
    does). As in optax and PyTorch the decay is multiplied by the (scheduled) learning rate η, so
    the paper's schedule-multiplier form has :math:`\lambda_{\text{paper}} = \eta\lambda`.

    State: ``(ScaleByAdamState(count, mu, nu), EmptyState() or MaskedState(EmptyState()),
    lr_state)``. Equals ``optax.adamw(η, b1, b2, eps, eps_root, mu_dtype, weight_decay=λ, mask,
    nesterov=...)`` (λ a number; optax's scheduled λ is not offered).

    Args:
      learning_rate: η, a float, traced scalar or optax schedule.
      b1: β₁, default 0.9.
      b2: β₂, default 0.999.
      eps: ε, default 1e-8.
      eps_root: :math:`\epsilon_{\text{root}}`, default 0.
      mu_dtype: dtype of ``mu`` (default: the parameter dtype).
      weight_decay: λ, default 1e-4 (optax's).
      mask: which leaves are decayed: a pytree of bools (a prefix of the parameters) or a callable
        ``params -> pytree``; default all.
      nesterov: NAdamW (static).
    """
    return _adam_rule(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov, weight_decay, mask, "adamw")


__all__ = ["AdagradState", "AdamState", "RMSPropState", "adagrad", "adam", "adamw", "rmsprop"]
