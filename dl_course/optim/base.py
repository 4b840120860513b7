"""The conventions every update rule in :mod:`dl_course.optim` follows, and the plumbing for them.

An update rule is an ``optax.GradientTransformationExtraArgs``: ``init(params) -> state`` and
``update(grads, state, params=None, *, grad_fn=None) -> (updates, state)``, with ``updates``
already multiplied by ``-learning_rate`` (apply them with ``optax.apply_updates``). Three
conventions make the rules usable inside a vmapped sweep (``dl_course.train.program`` builds the
rule inside its jitted, vmapped step):

1. **Hyperparameters are call arguments, never state.** A factory such as ``adam(learning_rate,
   b1, b2, eps)`` accepts Python floats or traced ``jnp`` scalars, so a sweep rebuilds the
   transformation inside its jitted, vmapped step with per-run values and never recompiles when
   those values change. ``init`` does not depend on them: two instances with different
   hyperparameters produce identical initial states.
2. **The extra argument ``grad_fn``** (``params -> grads`` of the same minibatch loss) is accepted
   by every rule and used only by SAM, which needs the gradient at a perturbed point.
3. **Dtypes.** Each rule computes in at least float32 (``promote_types(dtype, float32)``) and casts
   results back: updates to the gradient's dtype, state leaves to the dtype they were initialised
   with (the parameter dtype). So a ``lax.scan`` carry keeps its dtypes, and bfloat16/float16
   parameters do not have their arithmetic done in 8-bit/11-bit mantissas. (Storing a bfloat16
   second moment still rounds away relative increments below ~2⁻⁸; that is a storage choice of
   the caller, made by the parameter dtype.) Only real floating-point parameters are supported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

PyTree = Any


def compute_dtype(x: jax.typing.ArrayLike) -> jnp.dtype:
    """The dtype a rule computes a leaf in: the leaf's dtype promoted to at least float32."""
    return jnp.promote_types(jnp.result_type(x), jnp.float32)


def leafwise(fn: Callable[..., tuple], grads: PyTree, *states: PyTree) -> tuple[PyTree, ...]:
    """Apply a per-leaf rule ``fn(g, *s) -> (u, *s_new)`` and unzip the results into trees.

    ``grads`` and every tree in ``states`` share one structure. Inputs are upcast with
    :func:`compute_dtype`; ``u`` is cast back to ``g``'s dtype and each ``s_new`` to the dtype of
    the matching ``s`` (convention 3 of this module).

    Returns:
      ``(updates, *new_states)``, each with the structure of ``grads``.
    """
    treedef = jax.tree.structure(grads)
    g_leaves = treedef.flatten_up_to(grads)
    s_leaves = [treedef.flatten_up_to(s) for s in states]
    outputs = []
    for g, *ss in zip(g_leaves, *s_leaves):
        g = jnp.asarray(g)
        dtype = compute_dtype(g)
        result = fn(g.astype(dtype), *(jnp.asarray(s).astype(dtype) for s in ss))
        cast = [jnp.asarray(result[0]).astype(g.dtype)]
        cast += [jnp.asarray(r).astype(jnp.result_type(s)) for r, s in zip(result[1:], ss)]
        outputs.append(cast)
    return tuple(treedef.unflatten([out[i] for out in outputs]) for i in range(1 + len(states)))


def global_norm(tree: PyTree) -> jax.Array:
    r"""Euclidean norm of a whole pytree, :math:`\|g\| = (\sum_{\text{leaves}} \sum_i g_i^2)^{1/2}`.

    Each leaf is squared and summed in :func:`compute_dtype`; the result has the promoted dtype of
    all leaves (float32 at least). The sum is taken of ``(g / s)^2`` with ``s = max |g|`` and
    rescaled, so tiny gradients (e.g. late logistic-loss training, |g| < 1e-19 in float32) do not
    underflow to a zero norm while ``g`` itself is non-zero.
    """
    leaves = [jnp.asarray(x) for x in jax.tree.leaves(tree)]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    leaves = [x.astype(compute_dtype(x)) for x in leaves]
    scale = jnp.max(jnp.stack([jnp.max(jnp.abs(x)) if x.size else jnp.zeros((), x.dtype) for x in leaves]))
    safe = jnp.where(scale > 0, scale, jnp.ones_like(scale))
    return safe * jnp.sqrt(sum(jnp.sum(jnp.square(x / safe)) for x in leaves))


def is_static_zero(value: Any) -> bool:
    """Whether a hyperparameter is the Python number 0 (a traced value is never "static zero")."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def require_params(params: PyTree | None, rule: str, reason: str) -> PyTree:
    """Raise a clear error when a rule that needs ``params`` was called without them."""
    if params is None:
        raise ValueError(f"{rule}.update needs `params` ({reason}); call update(grads, state, params).")
    return params


def zeros_like_tree(params: PyTree) -> PyTree:
    """A state buffer: zeros with the shape and dtype of every parameter leaf."""
    return jax.tree.map(jnp.zeros_like, params)


def rule(
    init_fn: Callable[[PyTree], Any],
    update_fn: Callable[[PyTree, Any, PyTree | None], tuple[PyTree, Any]],
) -> optax.GradientTransformationExtraArgs:
    """Package a first-order rule ``update_fn(grads, state, params)`` with the engine's signature.

    The returned ``update(grads, state, params=None, **extra_args)`` accepts and ignores extra
    keyword arguments such as ``grad_fn`` (convention 2), like ``optax.with_extra_args_support``.
    """

    def update(updates, state, params=None, **extra_args):
        del extra_args  # e.g. grad_fn: only SAM (dl_course.optim.sharpness_aware) uses it.
        return update_fn(updates, state, params)

    return optax.GradientTransformationExtraArgs(init_fn, update)
