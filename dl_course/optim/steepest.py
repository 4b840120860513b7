"""Normalized steepest descent: sign descent (ℓ∞ geometry) and normalized gradient descent (ℓ2).

Both take a step of fixed length η in a norm, in the steepest-descent direction for that norm:
``argmin_{||d|| ≤ 1} ⟨g, d⟩`` is ``−sign(g)`` for ℓ∞ and ``−g/||g||₂`` for ℓ2. Both are invariant
to rescaling the loss by c > 0 (up to ε for normalized GD). Their implicit biases differ: on
linearly separable data sign descent (like Adam) converges in direction to the ℓ∞ max-margin
classifier, normalized GD (like GD) to the ℓ2 one (Gunasekar et al. 2018, "Characterizing Implicit
Bias in Terms of Optimization Geometry", ICML).
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from dl_course.optim.base import global_norm, leafwise, rule
from dl_course.optim.stages import lr_init, lr_step


def sign_descent(learning_rate) -> optax.GradientTransformationExtraArgs:
    r"""Sign gradient descent (Bernstein et al. 2018, "signSGD: Compressed Optimisation for
    Non-Convex Problems", ICML; Balles, Pedregosa & Le Roux 2020, "The Geometry of Sign Gradient
    Descent", arXiv:2002.08056).

    .. math::
        \theta_{t+1} = \theta_t - \eta\,\mathrm{sign}(g_t)

    element-wise, with sign(0) = 0 (for complex g, ``jnp.sign`` gives g/|g|, as in optax).
    State: ``(EmptyState(), lr_state)`` as optax's. Equals ``optax.sign_sgd(η)``. Invariant to
    rescaling the gradient by any c > 0.

    Args:
      learning_rate: η, a float, traced scalar or optax schedule.
    """

    def update(grads, state, params):
        del params
        first, lr_state = state
        lr, lr_state = lr_step(learning_rate, lr_state)
        (updates,) = leafwise(lambda g: (-lr * jnp.sign(g),), grads)
        return updates, (first, lr_state)

    return rule(lambda params: (optax.EmptyState(), lr_init(learning_rate)), update)


def normalized_gd(learning_rate, eps=1e-6) -> optax.GradientTransformationExtraArgs:
    r"""Normalized gradient descent (Shor 1985, "Minimization Methods for Non-Differentiable
    Functions"; Hazan, Levy & Shalev-Shwartz 2015, "Beyond Convexity: Stochastic Quasi-Convex
    Optimization", NeurIPS).

    .. math::
        \theta_{t+1} = \theta_t - \eta\,\frac{g_t}{\|g_t\| + \epsilon}

    where :math:`\|g\|` is the Euclidean norm of the whole gradient pytree (all leaves together;
    :math:`|g_i|^2` for complex leaves), so every step has length ≈ η. State: ``(EmptyState(),
    lr_state)``. Equals ``optax.chain(optax.normalize_by_update_norm(1.0, eps=ε),
    optax.scale_by_learning_rate(η))``.

    Args:
      learning_rate: η, a float, traced scalar or optax schedule.
      eps: ε, default 1e-6 (optax.normalize_by_update_norm's).
    """

    def update(grads, state, params):
        del params
        first, lr_state = state
        lr, lr_state = lr_step(learning_rate, lr_state)
        denominator = global_norm(grads) + eps
        (updates,) = leafwise(lambda g: (-lr * (g / denominator),), grads)
        return updates, (first, lr_state)

    return rule(lambda params: (optax.EmptyState(), lr_init(learning_rate)), update)


__all__ = ["normalized_gd", "sign_descent"]
