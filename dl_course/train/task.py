"""A ``Task`` tells the engine how to initialise a model and compute its training loss.

The engine only ever calls ``task.init(key, x) -> (params, model_state)`` and
``task.loss(params, model_state, batch, key, train) -> (loss, (new_model_state, metrics))``, where
``batch = {"x": ..., "y": ...}``, ``loss`` is the mean over the batch, ``metrics`` a dict of batch
means (e.g. ``accuracy``) and ``key`` a PRNG key (dropout, or the noise of a denoising score
matching loss). In train mode the loss also receives, as keyword arguments, the run's values of
the grid keys the model's call takes (``dropout_rate``) and of those the Task names in
``hparams``. A generative model supplies its own Task; ``supervised_task`` builds the one for
classification and regression.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_course.train import losses


class Task(NamedTuple):
    init: Callable[[Any, Any], tuple[Any, Any]]
    loss: Callable[..., tuple[Any, tuple[Any, dict]]]
    apply: Callable[..., Any] | None = None  # (params, model_state, x) -> outputs, eval mode
    #: Grid keys this task's loss takes as traced keyword arguments in train mode (e.g. the
    #: beta-VAE's ``beta``): sweepable without recompiling; evaluation calls the loss without them.
    hparams: tuple[str, ...] = ()


def _split_variables(variables):
    variables = dict(variables)
    params = variables.pop("params")
    return params, variables


def supervised_task(model: nn.Module, loss_name: str, num_classes: int) -> Task:
    """Task for supervised learning with a per-example loss from ``dl_course.train.losses``.

    The batch loss is the mean of the per-example losses; ``metrics`` holds ``accuracy`` for
    classification. In train mode, batch-norm statistics are updated (``batch_stats`` returned as
    the new model state) and dropout draws from ``key``. Keyword arguments of ``loss`` go to the
    model's call (the engine passes ``dropout_rate`` when it is a grid key).
    """
    per_example = losses.get(loss_name)

    def init(key, x):
        k_params, k_dropout = jax.random.split(key)
        variables = model.init({"params": k_params, "dropout": k_dropout}, x, train=False)
        return _split_variables(variables)

    def apply(params, model_state, x):
        return model.apply({"params": params, **model_state}, x, train=False)

    def loss(params, model_state, batch, key, train, **model_kwargs):
        variables = {"params": params, **model_state}
        if train and model_state:
            outputs, new_state = model.apply(variables, batch["x"], train=True, rngs={"dropout": key},
                                             mutable=list(model_state), **model_kwargs)
            new_state = dict(new_state)
        else:
            outputs = model.apply(variables, batch["x"], train=train, rngs={"dropout": key}, **model_kwargs)
            new_state = model_state
        value = jnp.mean(per_example(outputs, batch["y"], num_classes))
        metrics = {"accuracy": jnp.mean(losses.correct(outputs, batch["y"]))} if num_classes > 0 else {}
        return value, (new_state, metrics)

    return Task(init=init, loss=loss, apply=apply)


def predict(task: Task, params, model_state, x, batch_size: int = 1024):
    """Eval-mode outputs of ONE run (no run axis) on ``x``, in batches of ``batch_size``, as numpy."""
    import numpy as np

    apply = jax.jit(task.apply)
    return np.concatenate([np.asarray(apply(params, model_state, x[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)])


def train_mode_accuracy(task: Task, params, model_state, x, y, batch_size: int) -> float:
    """Accuracy of ONE run with batch norm in *train* mode: each minibatch of ``batch_size``
    normalised by its own statistics (running averages unused, updated statistics discarded; the
    last incomplete minibatch dropped). Ioffe & Szegedy (2015): the train/eval gap of batch norm."""
    import numpy as np

    acc = jax.jit(lambda p, ms, b: task.loss(p, ms, b, jax.random.PRNGKey(0), True)[1][1]["accuracy"])
    n = (len(x) // batch_size) * batch_size
    return float(np.mean([float(acc(params, model_state, {"x": x[i:i + batch_size], "y": y[i:i + batch_size]}))
                          for i in range(0, n, batch_size)]))
