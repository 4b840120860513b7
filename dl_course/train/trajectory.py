"""Recording the optimization trajectory θ(t) during a sweep, as a hook.

Loss-landscape plots along the principal components of a trajectory (Li et al. 2018, §7),
Hessian spectra at several points of training (Sagun et al. 2017; Papyan 2019) and the
direction of w(t) for max-margin studies (Soudry et al. 2018) all need the parameters at chosen
steps. The hook keeps them in a fixed-size buffer in the run's state (it is vmapped over the runs
of a sweep like every hook), so the whole trajectory comes back in ``SweepResult.state.extras``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from dl_course.errors import ConfigError
from dl_course.train.build import make_model
from dl_course.train.hooks import Hook
from dl_course.train.task import Task, supervised_task


def record_steps(total_steps: int, num: int, *, spacing: str = "log", include_init: bool = False) -> np.ndarray:
    """About ``num`` distinct integer steps in ``[1, total_steps]``, always including
    ``total_steps`` (so the last record is the final iterate); ``spacing`` is ``"log"`` (dense
    early, for the max-margin rates in log t) or ``"linear"``. ``include_init`` prepends step 0
    (the initialization)."""
    if spacing not in ("log", "linear"):
        raise ValueError(f"unknown spacing {spacing!r}; valid: log, linear")
    if total_steps < 1 or num < 1:
        raise ValueError(f"need total_steps >= 1 and num >= 1, got {total_steps}, {num}")
    grid = np.logspace(0.0, np.log10(total_steps), num) if spacing == "log" else np.linspace(1, total_steps, num)
    s = np.unique(np.round(grid).astype(np.int64))
    if include_init:
        s = np.concatenate([[0], s])
    return s.astype(np.int32)


def trajectory_hook(steps) -> Hook:
    """A hook keeping the flat parameter vector ``θ(t)`` (``jax.flatten_util.ravel_pytree`` order)
    at each ``t`` in ``steps`` (sorted, distinct, ≥ 0; step 0 is the initialization).

    Its state is a ``[len(steps), d]`` buffer: ``init`` writes row 0 if ``steps[0] == 0``, and
    ``on_step`` (after every optimizer step) writes the row of the current step — one ``O(d)``
    dynamic update per step, a no-op between recorded steps. Rows of steps never reached stay
    zero. Read it from ``SweepResult.state.extras[name]`` (``[run, len(steps), d]``) and unflatten
    with the ``unravel`` of one run's parameters. Memory: ``len(steps) · d`` floats per run.

    The same ``steps`` give the same hook object, so a sweep repeated with the same engine config
    (e.g. a study run again with other measurement settings) reuses its compiled program.
    """
    steps = np.asarray(steps, np.int64)
    if steps.ndim != 1 or steps.size == 0 or np.any(steps < 0) or np.any(np.diff(steps) <= 0):
        raise ValueError(f"steps must be a non-empty, strictly increasing list of steps >= 0, got {steps.tolist()}")
    return _trajectory_hook(tuple(int(t) for t in steps))


@functools.lru_cache(maxsize=64)
def _trajectory_hook(steps: tuple[int, ...]) -> Hook:
    steps = np.asarray(steps, np.int64)
    table = jnp.asarray(steps.astype(np.int32))
    last = len(steps) - 1
    records_init = bool(steps[0] == 0)

    def init(ctx):
        flat = ravel_pytree(ctx.params)[0]
        buffer = jnp.zeros((len(steps), flat.size), flat.dtype)
        return buffer.at[0].set(flat) if records_init else buffer

    def on_step(buffer, ctx):
        i = jnp.minimum(jnp.searchsorted(table, ctx.step), last)
        flat = ravel_pytree(ctx.params)[0]
        return buffer.at[i].set(jnp.where(table[i] == ctx.step, flat, buffer[i]))

    return Hook(init=init, on_step=on_step)


def trajectory_task(config, data, study: str) -> tuple[Task, Callable]:
    """The supervised Task of ``config`` on ``data`` and the ``unravel`` that turns a recorded
    flat parameter vector back into the parameter pytree. Raises ``ConfigError`` (naming
    ``study``) if the model carries non-parameter state such as batch-norm statistics, which the
    trajectory hook does not record."""
    task = supervised_task(make_model(config, data), config.loss, data.num_classes)
    params0, model_state0 = task.init(jax.random.PRNGKey(0), data.x_train[:1])
    if jax.tree.leaves(model_state0):
        raise ConfigError(f"{study} records parameters only; model {config.model!r} with these options has "
                          "non-parameter state (batch norm): choose a model without it")
    return task, ravel_pytree(params0)[1]
