"""Sharpness-Aware Minimization (SAM) and its adaptive variant (ASAM), wrapping any base rule.

SAM needs a second gradient, at the ascent-perturbed point, so it needs the loss. The caller
supplies it as the extra keyword argument ``grad_fn`` of ``update``, with the signature of
``optax.contrib.sam``'s opaque mode: ``grad_fn(params, i) -> grads`` of the *same* minibatch loss
(same batch, same dropout key) whose gradient ``grads`` is at ``params``; ``i`` is the index of
the ascent step (always 0: one ascent step). A ``grad_fn`` that takes only ``params`` (the
engine's, and this codebase's earlier convention) is called as ``grad_fn(params)``. Under a
vmapped sweep ``grad_fn`` closes over the per-run batch and ρ and η are per-run traced scalars,
so nothing here is specific to one run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dl_course.optim.base import PyTree, compute_dtype, global_norm, require_params
from dl_course.optim.rules import base_rule


class SAMState(NamedTuple):
    """SAM state: the state of the base rule applied to the SAM gradient."""

    base_state: Any


def sam_perturbation(grads: PyTree, params: PyTree | None, rho, adaptive: bool = False, adaptive_eta=0.0) -> PyTree:
    r"""The SAM ascent step ε (Foret et al. 2021; ASAM: Kwon et al. 2021).

    .. math::
        \varepsilon = \rho\,\frac{g}{\|g\|} \quad\text{(SAM)},\qquad
        \varepsilon = \rho\,\frac{T^2 g}{\|T g\|},\; T = |\theta| + \eta_A
        \quad\text{(ASAM, adaptive=True)}

    with :math:`\|\cdot\|` the Euclidean norm over the whole pytree and all products element-wise.
    ε is the maximiser of the first-order expansion of :math:`L(\theta+\varepsilon)` over the ball
    :math:`\|T^{-1}\varepsilon\| \le \rho` (T = I for SAM). ε = 0 where the norm is 0. Leaves
    have the dtype of ``grads``.
    """
    if adaptive:
        params = require_params(params, "sam", "adaptive SAM scales the ascent by |θ|")
        scale = jax.tree.map(lambda p: jnp.abs(p.astype(compute_dtype(p))) + adaptive_eta, params)
        scaled = jax.tree.map(lambda t, g: t * g.astype(compute_dtype(g)), scale, grads)
    else:
        scale = None
        scaled = grads
    norm = global_norm(scaled)
    factor = jnp.where(norm > 0, rho / jnp.where(norm > 0, norm, 1.0), 0.0)
    if adaptive:
        return jax.tree.map(lambda t, tg, g: (factor * t * tg).astype(g.dtype), scale, scaled, grads)
    return jax.tree.map(lambda g: (factor * g.astype(compute_dtype(g))).astype(g.dtype), grads)


def _gradient_at(grad_fn: Callable, params: PyTree, i: int) -> PyTree:
    """``grad_fn(params, i)`` (optax.contrib's signature), or ``grad_fn(params)`` when its signature
    takes a single argument."""
    try:
        inspect.signature(grad_fn).bind(params, i)
    except TypeError:
        return grad_fn(params)
    except ValueError:  # no signature to inspect: assume optax's
        pass
    return grad_fn(params, i)


def sam(
    learning_rate,
    rho=0.05,
    adaptive: bool = False,
    base: str | Callable[..., optax.GradientTransformation] = "sgd",
    adaptive_eta=0.0,
    **base_hparams,
) -> optax.GradientTransformationExtraArgs:
    r"""Sharpness-Aware Minimization (Foret, Kleiner, Mobahi & Neyshabur 2021, "Sharpness-Aware
    Minimization for Efficiently Improving Generalization", ICLR); with ``adaptive=True``, ASAM
    (Kwon, Kim, Park & Choi 2021, "ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant
    Learning of Deep Neural Networks", ICML).

    SAM minimises :math:`\max_{\|\varepsilon\|\le\rho} L(\theta+\varepsilon)` with the first-order
    inner solution and gradient (the :math:`d\varepsilon/d\theta` term dropped, as in the paper):

    .. math::
        g_t = \nabla L(\theta_t),\quad
        \varepsilon_t = \rho\,\frac{g_t}{\|g_t\|}
        \;\Big(\text{ASAM: } \rho\,\frac{T_t^2 g_t}{\|T_t g_t\|},\; T_t = |\theta_t| + \eta_A\Big),\\
        g^{\text{SAM}}_t = \nabla L(\theta_t + \varepsilon_t),\qquad
        (u_t, s_t) = \text{base.update}(g^{\text{SAM}}_t, s_{t-1}, \theta_t),\qquad
        \theta_{t+1} = \theta_t + u_t

    so with ``base="sgd"``: :math:`\theta_{t+1} = \theta_t - \eta\,\nabla L(\theta_t +
    \rho g_t/\|g_t\|)`. Base weight decay and other base rules see the SAM gradient and the
    unperturbed θ. Each step costs two gradient evaluations.

    ``update(grads, state, params, *, grad_fn)``: ``grads`` = ∇L(θ_t), ``grad_fn(params, i) ->
    grads`` of the same minibatch loss (required; ``i = 0``; a one-argument ``grad_fn(params)`` is
    accepted too). With ``base="sgd"`` and ``adaptive=False`` this equals optax.contrib's
    ``sam(optax.sgd(η), optax.chain(normalize(), optax.sgd(ρ)), sync_period=2, opaque_mode=True)``.
    State: :class:`SAMState` holding the base state. Works under ``optax.inject_hyperparams``
    (η, ρ and η_A injected; base hyperparameters fixed).

    Args:
      learning_rate: η, passed to the base rule.
      rho: ρ, radius of the ascent step, default 0.05 (the paper's usual value; ASAM papers use
        larger ρ, e.g. 0.5–2, because T shrinks the ball).
      adaptive: use ASAM's scale-invariant ball (static Python bool).
      base: name of a registered rule other than "sam" (default "sgd"), or a factory
        ``factory(learning_rate, **base_hparams)``. Static.
      adaptive_eta: :math:`\eta_A \ge 0` added to |θ| in ASAM's T (Kwon et al. use 0.01 in their
        code; 0 gives the pure T = |θ|). Ignored unless ``adaptive``.
      **base_hparams: hyperparameters of the base rule, e.g. ``momentum=0.9``. (A keyword
        ``base_hparams={...}``, which ``optax.inject_hyperparams`` passes for this ``**`` argument,
        is unpacked into them.)
    """
    nested = base_hparams.pop("base_hparams", None)
    if isinstance(nested, dict):
        base_hparams = {**nested, **base_hparams}
    elif nested is not None:
        raise TypeError(f"sam: base_hparams must be a dict of base-rule keywords, got {nested!r}.")
    base_tx = base_rule(base)(learning_rate, **base_hparams)

    def init(params):
        return SAMState(base_state=base_tx.init(params))

    def update(grads, state, params=None, *, grad_fn=None, **extra_args):
        if grad_fn is None:
            raise ValueError(
                "sam.update needs the keyword argument grad_fn (params -> gradient of the same "
                "minibatch loss, optax.contrib's signature grad_fn(params, i)) to take the gradient at "
                "the perturbed point θ + ε; the training engine passes it, a hand-written loop must "
                "too: tx.update(grads, state, params, grad_fn=jax.grad(lambda p, i: loss(p)))."
            )
        params = require_params(params, "sam", "the SAM gradient is taken at params + ε")
        epsilon = jax.lax.stop_gradient(sam_perturbation(grads, params, rho, adaptive, adaptive_eta))
        perturbed = jax.tree.map(lambda p, e: (p + e).astype(p.dtype), params, epsilon)
        sam_grads = _gradient_at(grad_fn, perturbed, 0)
        updates, base_state = base_tx.update(sam_grads, state.base_state, params, **extra_args)
        return updates, SAMState(base_state=base_state)

    return optax.GradientTransformationExtraArgs(init, update)


__all__ = ["SAMState", "sam", "sam_perturbation"]
