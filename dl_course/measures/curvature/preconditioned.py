"""Preconditioned sharpness for adaptive methods (Cohen et al. 2022) and stability thresholds.

Adam's update is ``θ ← θ − η P⁻¹ m`` with the raw first-moment EMA ``m`` and the diagonal
preconditioner

    P = (1 − β1ᵗ) · diag(√v̂ + ε),      v̂ = ν / (1 − β2ᵗ),

where ``ν`` is the second-moment EMA and ``t`` the number of updates taken (``count``). Indeed
``η m̂ / (√v̂ + ε) = η m / ((1 − β1ᵗ)(√v̂ + ε))``. This is the preconditioner of Cohen et al.
(2022, "Adaptive gradient methods at the edge of stability", §2). Treating ``P`` as frozen, the
linearized dynamics are those of heavy-ball momentum on ``P^{-1/2} H P^{-1/2}``; they are stable
while its top eigenvalue ("preconditioned sharpness") stays below ``(2 + 2β1) / ((1 − β1) η)``
(``38/η`` for ``β1 = 0.9``), where Cohen et al. find it hovers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dl_course.measures.curvature.operators import Operator, hessian_operator
from dl_course.measures.curvature.spectrum import DEFAULT_NUM_ITERS, EigenResult, operator_eigenpairs

PyTree = Any


def _is_adam_state(x: Any) -> bool:
    fields = getattr(x, "_fields", ())
    return all(f in fields for f in ("count", "mu", "nu"))


def find_adam_state(opt_state: PyTree) -> Any:
    """The first node of ``opt_state`` with fields ``count``, ``mu``, ``nu``: optax's
    ``ScaleByAdamState`` or ``dl_course.optim``'s Adam state, anywhere in a chain. Raises
    ``ValueError`` if there is none."""
    nodes = jax.tree_util.tree_leaves(opt_state, is_leaf=_is_adam_state)
    for node in nodes:
        if _is_adam_state(node):
            return node
    raise ValueError("no Adam state (a NamedTuple with fields count, mu, nu) in opt_state")


def adam_preconditioner(
    opt_state: PyTree, b1: jax.Array = 0.9, b2: jax.Array = 0.999, eps: jax.Array = 1e-8
) -> PyTree:
    """Adam's diagonal preconditioner ``P = (1 − β1ᵗ)(√(ν/(1 − β2ᵗ)) + ε)`` as a pytree like the
    parameters (module docstring), from the Adam state found in ``opt_state``. ``β1, β2, ε`` are
    those of the optimizer (hyperparameters are not stored in the state). Before the first update
    (``t = 0``) there is no preconditioner and every entry is ``nan``."""
    state = find_adam_state(opt_state)
    t = jnp.asarray(state.count).astype(jnp.result_type(float))
    c1 = 1.0 - b1**t
    c2 = 1.0 - b2**t
    nan_if_unset = jnp.where(t > 0, 1.0, jnp.nan)
    return jax.tree_util.tree_map(
        lambda nu: (nan_if_unset * c1 * (jnp.sqrt(nu / c2) + eps)).astype(nu.dtype), state.nu
    )


def preconditioned_operator(operator: Operator, preconditioner: PyTree) -> Operator:
    """``v ↦ P^{-1/2} A P^{-1/2} v`` for a diagonal ``P`` given as a pytree of positive entries.
    It is symmetric and has the eigenvalues of ``P⁻¹A``."""
    inv_sqrt = jax.tree_util.tree_map(lambda p: 1.0 / jnp.sqrt(p), preconditioner)
    scale = lambda v: jax.tree_util.tree_map(jnp.multiply, inv_sqrt, v)  # noqa: E731
    return lambda v: scale(operator(scale(v)))


def preconditioned_sharpness(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    preconditioner: PyTree,
    k: int = 1,
    *,
    key: jax.Array,
    num_iters: int = DEFAULT_NUM_ITERS,
    v0: PyTree | None = None,
) -> EigenResult:
    """Top-``k`` eigenpairs of ``P^{-1/2} ∇²L(θ) P^{-1/2}`` (Cohen et al. 2022) by Lanczos, with Ritz
    residuals. ``preconditioner`` is a pytree like ``params``, e.g. :func:`adam_preconditioner`.
    Eigenvectors are those of the symmetrized operator (``P^{1/2}`` times those of ``P⁻¹H``)."""
    op = preconditioned_operator(hessian_operator(loss_fn, params), preconditioner)
    return operator_eigenpairs(op, params, k, key=key, num_iters=num_iters, v0=v0)


def gd_stability_threshold(learning_rate: jax.Array, momentum: jax.Array = 0.0) -> jax.Array:
    """Largest stable curvature of (heavy-ball) GD on a quadratic: ``(2 + 2β)/η``; ``2/η`` for plain
    GD (Cohen et al. 2021, §2 and App. B)."""
    return (2.0 + 2.0 * momentum) / learning_rate


def adam_stability_threshold(learning_rate: jax.Array, b1: jax.Array = 0.9) -> jax.Array:
    """Threshold ``(2 + 2β1) / ((1 − β1) η)`` for Adam's preconditioned sharpness with ``P`` as in
    the module docstring (Cohen et al. 2022, §2): ``38/η`` at ``β1 = 0.9``."""
    return (2.0 + 2.0 * b1) / ((1.0 - b1) * learning_rate)
