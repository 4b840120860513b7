r"""The two stages optax chains around a rule's direction, with optax's state for each.

* **Learning rate** (``optax.scale_by_learning_rate``): η is a number, a traced scalar (the engine
  passes ``η · s(step)`` built inside its jitted, vmapped step), or an optax schedule
  ``η(count) -> lr``. A schedule adds optax's ``ScaleByScheduleState(count)`` to the state and is
  evaluated at the count *before* the increment (η(0) at the first update); a number adds
  ``EmptyState()``, so a swept learning rate stays a traced scalar and changes no program.
* **Weight decay** (``optax.add_decayed_weights``): λθ added to a direction, on the leaves a
  ``mask`` selects (a pytree of bools that is a prefix of the parameters, or a callable
  ``params -> such a pytree``; ``True`` = decayed), as ``optax.add_decayed_weights(λ, mask)``.
  λ is a number or traced scalar; optax's scheduled λ is not supported (one clear error).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from dl_course.optim.base import PyTree, is_static_zero, require_params


def lr_init(learning_rate) -> optax.ScaleByScheduleState | optax.EmptyState:
    """The learning-rate stage's state: ``ScaleByScheduleState(count=0)`` for a schedule, else empty."""
    if callable(learning_rate):
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))
    return optax.EmptyState()


def lr_step(learning_rate, state) -> tuple[Any, Any]:
    """``(η_t, new_state)``: η(count) and the incremented count for a schedule, else ``(η, state)``."""
    if callable(learning_rate):
        return learning_rate(state.count), optax.ScaleByScheduleState(count=optax.safe_increment(state.count))
    return learning_rate, state


def check_weight_decay(weight_decay, rule: str) -> None:
    """Reject a scheduled λ before anything is traced (the rules take a number or traced scalar)."""
    if callable(weight_decay):
        raise TypeError(f"{rule}: weight_decay must be a number or a scalar array, not a schedule; "
                        "schedule the learning rate instead (the decay is multiplied by it).")


def decay_init(mask) -> optax.MaskedState | optax.EmptyState:
    """The decay stage's state as optax's ``add_decayed_weights(λ, mask)`` has it (no leaves)."""
    return optax.EmptyState() if mask is None else optax.MaskedState(inner_state=optax.EmptyState())


def decay_inputs(params: PyTree | None, weight_decay, mask, rule: str) -> tuple[tuple[PyTree, ...], PyTree | None]:
    """The extra input tree and the per-leaf flags of a rule with weight decay.

    Returns ``((), None)`` when λ is the Python number 0 (params not needed); else ``((params,),
    flags)`` with ``flags`` a tree like ``params`` of bools (Python bools for a static mask, arrays
    for a traced one), or ``None`` when every leaf is decayed.
    """
    if is_static_zero(weight_decay):
        return (), None
    params = require_params(params, rule, "weight decay adds λθ")
    if mask is None:
        return (params,), None
    prefix = mask(params) if callable(mask) else mask
    flags = jax.tree.map(lambda flag, sub: jax.tree.map(lambda _: flag, sub), prefix, params)
    return (params,), flags


def add_decay(direction, param, weight_decay, flag):
    """``direction + λθ`` on a decayed leaf (``flag`` True or None), ``direction`` on a masked-out one."""
    if flag is None or flag is True:
        return direction + weight_decay * param
    if flag is False:
        return direction
    return jnp.where(flag, direction + weight_decay * param, direction)


__all__ = ["add_decay", "check_weight_decay", "decay_init", "decay_inputs", "lr_init", "lr_step"]
