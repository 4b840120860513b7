r"""The conventions every update rule in :mod:`dl_course.optim` follows, and the plumbing for them.

An update rule is an ``optax.GradientTransformationExtraArgs``: ``init(params) -> state`` and
``update(grads, state, params=None, **extra_args) -> (updates, state)``, with ``updates`` already
multiplied by ``-learning_rate`` (apply them with ``optax.apply_updates``). The rules are drop-in
for optax's and usable inside a vmapped sweep (``dl_course.train.program`` builds the rule inside
its jitted, vmapped step):

1. **Hyperparameters are call arguments, never extra state.** A factory such as ``adam(learning_rate,
   b1, b2, eps)`` accepts Python floats or traced ``jnp`` scalars, so a sweep rebuilds the
   transformation inside its jitted, vmapped step with per-run values and never recompiles when
   those values change; ``optax.inject_hyperparams`` works the same way. ``learning_rate`` may
   also be an optax schedule ``count -> lr`` (:mod:`~dl_course.optim.stages`). ``init`` depends on
   a hyperparameter only where optax's state does (adagrad's initial accumulator, rmsprop's
   ``initial_scale``).
2. **State as optax's.** Each rule's state is the pytree of the optax chain it equals, built from
   optax's own state classes (``TraceState``, ``ScaleByAdamState``, ``ScaleByRssState``,
   ``ScaleByRmsState``, ``ScaleByScheduleState``, ``MaskedState``, ``EmptyState``), with the same
   contents: ``optax.tree.get``, ``optax.tree.map_params``, checkpoints and code written for
   optax's state work on both.
3. **Extra arguments.** ``update`` accepts and ignores keyword arguments it does not use; SAM uses
   ``grad_fn`` (optax.contrib's signature ``grad_fn(params, i) -> grads``).
4. **Dtypes.** Each rule computes a leaf in at least float32 (the promotion of the gradient's and
   the state's dtypes with float32) and casts results back: updates to the gradient's dtype, state
   leaves to the dtype they were initialised with (the parameter dtype unless ``mu_dtype`` /
   ``accumulator_dtype`` says otherwise). So a ``lax.scan`` carry keeps its dtypes, and
   bfloat16/float16 parameters do not have their arithmetic done in 8-bit/11-bit mantissas.
5. **Complex parameters** are handled as optax handles them: squared magnitudes are
   :math:`|g|^2 = \mathrm{Re}(\bar g g)` (:func:`abs_sq`), moments and norms are complex-safe, and the
   caller passes the conjugate of JAX's gradient of a real loss, as for optax
   (``jax.tree.map(jnp.conj, grads)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

PyTree = Any


def compute_dtype(*xs: jax.typing.ArrayLike) -> jnp.dtype:
    """The dtype a rule computes a leaf in: the leaves' dtypes promoted together and to float32."""
    return jnp.promote_types(jnp.result_type(*xs), jnp.float32)


def abs_sq(x: jax.Array) -> jax.Array:
    r"""The squared magnitude :math:`|x|^2`: ``x * x`` for real ``x``, :math:`\mathrm{Re}(\bar x x)` for
    complex ``x`` (as ``optax``'s ``numerics.abs_sq``; real, same dtype precision)."""
    if jnp.iscomplexobj(x):
        return (x.conj() * x).real
    return x * x


def leafwise(fn: Callable[..., tuple], grads: PyTree, *states: PyTree, flags: PyTree | None = None) -> tuple[PyTree, ...]:
    """Apply a per-leaf rule ``fn(g, *s) -> (u, *s_new)`` and unzip the results into trees.

    ``grads`` and every tree in ``states`` share one structure. Inputs are upcast to
    :func:`compute_dtype` of the leaf's gradient and states; ``u`` is cast back to ``g``'s dtype
    and each ``s_new`` to the dtype of the matching ``s`` (convention 4 of this module). With
    ``flags`` (a tree like ``grads``, e.g. a weight-decay mask) ``fn`` is called as
    ``fn(g, *s, flag=f)`` with the leaf's flag.

    Returns:
      ``(updates, *new_states)``, each with the structure of ``grads``.
    """
    treedef = jax.tree.structure(grads)
    g_leaves = treedef.flatten_up_to(grads)
    s_leaves = [treedef.flatten_up_to(s) for s in states]
    f_leaves = treedef.flatten_up_to(flags) if flags is not None else None
    outputs = []
    for i, (g, *ss) in enumerate(zip(g_leaves, *s_leaves)):
        g, ss = jnp.asarray(g), [jnp.asarray(s) for s in ss]
        dtype = compute_dtype(g, *ss)
        args = (g.astype(dtype), *(s.astype(dtype) for s in ss))
        result = fn(*args) if f_leaves is None else fn(*args, flag=f_leaves[i])
        cast = [jnp.asarray(result[0]).astype(g.dtype)]
        cast += [jnp.asarray(r).astype(jnp.result_type(s)) for r, s in zip(result[1:], ss)]
        outputs.append(cast)
    return tuple(treedef.unflatten([out[i] for out in outputs]) for i in range(1 + len(states)))


def global_norm(tree: PyTree) -> jax.Array:
    r"""Euclidean norm of a whole pytree, :math:`\|g\| = (\sum_{\text{leaves}} \sum_i |g_i|^2)^{1/2}`
    (complex leaves allowed, as ``optax.tree.norm``).

    Each leaf is squared and summed in :func:`compute_dtype`; the result has the promoted dtype of
    all leaves (real, float32 at least). The sum is taken of ``(g / s)^2`` with ``s = max |g|`` and
    rescaled, so tiny gradients (e.g. late logistic-loss training, |g| < 1e-19 in float32) do not
    underflow to a zero norm while ``g`` itself is non-zero.
    """
    leaves = [jnp.asarray(x) for x in jax.tree.leaves(tree)]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    leaves = [x.astype(compute_dtype(x)) for x in leaves]
    scale = jnp.max(jnp.stack([jnp.max(jnp.abs(x)) if x.size else jnp.zeros((), x.real.dtype) for x in leaves]))
    safe = jnp.where(scale > 0, scale, jnp.ones_like(scale))
    return safe * jnp.sqrt(sum(jnp.sum(abs_sq(x / safe)) for x in leaves))


def is_static_zero(value: Any) -> bool:
    """Whether a hyperparameter is the Python number 0 (a traced value is never "static zero")."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def require_params(params: PyTree | None, rule: str, reason: str) -> PyTree:
    """Raise a clear error when a rule that needs ``params`` was called without them."""
    if params is None:
        raise ValueError(f"{rule}.update needs `params` ({reason}); call update(grads, state, params).")
    return params


def zeros_like_tree(params: PyTree, dtype: Any = None) -> PyTree:
    """A state buffer: zeros with the shape of every parameter leaf, in ``dtype`` (default: the
    leaf's dtype), as ``optax.tree.zeros_like``."""
    return jax.tree.map(lambda p: jnp.zeros_like(p, dtype=dtype), params)


def full_like_tree(params: PyTree, value) -> PyTree:
    """A state buffer filled with ``value`` (a number or traced scalar), shaped and typed like the
    parameters, as ``optax.tree.full_like``."""
    return jax.tree.map(lambda p: jnp.full_like(p, value), params)


def canonical_dtype(dtype: Any) -> jnp.dtype | None:
    """A state dtype option (``mu_dtype``, ``accumulator_dtype``) as a canonical dtype, or None."""
    return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


def rule(
    init_fn: Callable[[PyTree], Any],
    update_fn: Callable[[PyTree, Any, PyTree | None], tuple[PyTree, Any]],
) -> optax.GradientTransformationExtraArgs:
    """Package a first-order rule ``update_fn(grads, state, params)`` with the engine's signature.

    The returned ``update(grads, state, params=None, **extra_args)`` accepts and ignores extra
    keyword arguments such as ``grad_fn`` (convention 3), like ``optax.with_extra_args_support``.
    """

    def update(updates, state, params=None, **extra_args):
        del extra_args  # e.g. grad_fn: only SAM (dl_course.optim.sharpness_aware) uses it.
        return update_fn(updates, state, params)

    return optax.GradientTransformationExtraArgs(init_fn, update)
