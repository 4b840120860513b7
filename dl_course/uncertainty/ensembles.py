"""Deep ensembles (Lakshminarayanan et al. 2017, "Simple and scalable predictive uncertainty
estimation using deep ensembles", NeurIPS) as the seeds axis of one vmapped sweep.

M networks differing only in their random initialisation and minibatch order — the ``seed`` axis of
``dl_course.train.sweep`` — are combined by averaging their predictive distributions,

    p(y | x) = (1/M) Σ_{m=1}^{M} softmax(f(x; θ_m))_y,

(the paper's adversarial training is not used, as in most later work, e.g. Ovadia et al. 2019).
The result is a ``Predictive`` whose sample axis is the member axis, so every metric and OOD score
applies unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from dl_course.uncertainty.predictive import Predictive, map_batches


def ensemble_predict(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    stacked_variables,
    x: jax.Array,
    batch_size: int | None = None,
) -> Predictive:
    """Logits ``[M, N, K]`` of the M members stacked along the leading axis of
    ``stacked_variables``, evaluated with ``jax.vmap`` over members (inputs in batches of
    ``batch_size``). With the engine's ``Task`` and a ``SweepResult``, restricted to the seeds of
    one configuration with ``select_members``::

        ensemble_predict(lambda v, x: task.apply(v[0], v[1], x),
                         select_members((result.params, result.state.model_state), runs), x_test)
    """
    def member(v):
        return map_batches(lambda xb, _: apply_fn(v, xb), x, batch_size)

    return Predictive(jax.vmap(member)(stacked_variables))


def select_members(stacked, runs) -> Any:
    """The runs ``runs`` (indices into the leading run axis) of a stacked pytree, e.g. the seeds of
    one learning rate: ``select_members(result.params, [i for i, g in enumerate(result.grid) if
    g["learning_rate"] == 0.1])``."""
    index = np.asarray(runs, dtype=np.int32)
    if index.ndim != 1 or index.size == 0:
        raise ValueError("runs must be a non-empty 1-D list of run indices.")
    return jax.tree_util.tree_map(lambda leaf: leaf[index], stacked)
