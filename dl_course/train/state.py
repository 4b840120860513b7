"""The per-run training state (a pytree; under a sweep every leaf has a leading run axis)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

# Named streams derived from a run's root key with fold_in(root, id): one root key per run, split
# into named keys, never reused across purposes.
KEY_STREAMS = {"init": 0, "data": 1, "dropout": 2, "labels": 3, "hooks": 4}


def stream(key, name: str):
    """The PRNG key of stream ``name`` (see ``KEY_STREAMS``) of a run's root ``key``."""
    return jax.random.fold_in(key, KEY_STREAMS[name])


class TrainState(NamedTuple):
    """Everything that changes during training of one run.

    Attributes:
      step: int32 scalar, optimizer steps taken.
      params: model parameters.
      model_state: non-parameter collections (``{"batch_stats": ...}``) or ``{}``.
      opt_state: optimizer state (holds no hyperparameters).
      hparams: dict name -> float32 scalar: ``learning_rate`` and every swept hyperparameter.
      key: the run's root PRNG key (raw uint32[2]); streams via ``stream(key, name)``.
      extras: dict hook name -> hook state.
      diverged: bool scalar; once True the run is frozen at its last finite state.
      y_train: the run's own training labels when they are randomized in-graph, else None.
      batch_order: the current epoch's permutation of the training set (minibatch SGD), else None.
      stopped_at: int32 scalar, the first step at which the run's train loss / accuracy met the
        target (``config.target_train_loss``), where it was frozen, or -1.
      pending: bool scalar; an evaluation point found the target met, the run is frozen there, and
        the exact first step is still to be found by replaying from ``anchor``
        (``dl_course.train.exact_stop``).
      anchor: the trainable part of the state (:class:`Anchor`) at the last evaluation point before
        the target was met: where the replay starts.
      step_fraction: float32 scalar, the fraction of the last update that was applied at the stop
        (1 unless a full step would have overshot the target's tolerance band).
    """

    step: Any
    params: Any
    model_state: Any
    opt_state: Any
    hparams: Any
    key: Any
    extras: Any
    diverged: Any
    y_train: Any = None
    batch_order: Any = None
    stopped_at: Any = None
    pending: Any = None
    anchor: Any = None
    step_fraction: Any = None


class Anchor(NamedTuple):
    """The part of a :class:`TrainState` that training changes (the replay's starting point)."""

    step: Any
    params: Any
    model_state: Any
    opt_state: Any
    extras: Any
    batch_order: Any


def anchor_of(state: TrainState) -> Anchor:
    """The :class:`Anchor` of ``state`` (its current step, parameters and training-time state)."""
    return Anchor(state.step, state.params, state.model_state, state.opt_state, state.extras, state.batch_order)
