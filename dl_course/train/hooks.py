"""Hooks: measurements and training-time state carried through a sweep.

A hook follows optax's ``init``/``update`` pattern. The engine calls, for every run of a sweep
(inside ``jax.vmap``):

* ``state = hook.init(ctx)`` once, after the parameters are initialised;
* ``state = hook.on_step(state, ctx)`` after every optimizer step (e.g. SWAG moments);
* ``state, metrics = hook.on_eval(state, ctx)`` at every evaluation point (e.g. the top Hessian
  eigenvalue, warm-started from the eigenvector stored in ``state``).

``metrics`` is a dict of scalars or small fixed-shape arrays; they are stacked into
``SweepResult.metrics[name]`` with shape ``[run, eval_point, ...]``. Hook states are pytrees of
arrays and end up in ``SweepResult.state.extras[hook_name]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


class HookContext(NamedTuple):
    """What a hook sees of one run at one point of training.

    Attributes:
      step: int32 scalar, optimizer steps taken so far.
      params: the run's parameters.
      model_state: non-parameter collections (e.g. ``{"batch_stats": ...}``), possibly empty.
      opt_state: the optimizer state (e.g. Adam's second moments for preconditioned sharpness).
      hparams: dict name -> scalar of the run's hyperparameters (``learning_rate`` included).
      key: a PRNG key for this run and this point of training (already folded with the step).
      loss_fn: ``params -> scalar``, the loss on the measurement set in eval mode.
      batch_loss_fn: ``(params, batch) -> scalar``, the loss on a given batch in eval mode.
      data: dict with the run's device arrays ``x_train``, ``y_train``.
    """

    step: Any
    params: Any
    model_state: Any
    opt_state: Any
    hparams: Any
    key: Any
    loss_fn: Callable[[Any], Any]
    batch_loss_fn: Callable[[Any, Any], Any]
    data: Any


class Hook(NamedTuple):
    """A measurement or training-time state carried by the engine (see module docstring)."""

    init: Callable[[HookContext], Any]
    on_step: Callable[[Any, HookContext], Any] | None = None
    on_eval: Callable[[Any, HookContext], tuple[Any, dict]] | None = None
