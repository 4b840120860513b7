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
      stopped_at: int32 scalar, the step at which the run reached the target train loss / accuracy
        (``config.target_train_loss``) and was frozen, or -1.
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
