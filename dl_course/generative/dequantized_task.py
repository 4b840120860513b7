"""Fresh uniform dequantisation of every training batch, for any ``Task`` of a continuous density.

A continuous model of ``K``-level pixels is fitted to, and evaluated on, the uniformly dequantised
variable ``y = low + (high - low) (k + u) / K``, ``u ~ U[0, 1)^D`` (Theis et al. 2016; Uria et al.
2013); its expected ``log p(y)`` lower-bounds the discrete log-likelihood. With a fixed set of
dequantised copies of the training images, a flexible model can learn the ``copies x n`` points
themselves at fine scales (a score model's small noise levels, weighted most by the likelihood
weighting, do: its test likelihood collapses), while fresh ``u`` at every step trains it on the
dequantised *distribution*, ``E_u log p(y)``, as ``flow.make_task`` does for the flow.
"""

from __future__ import annotations

import jax

from dl_course.generative.likelihood import dequantize
from dl_course.train import Task


def dequantized_task(task: Task, num_levels: int, low: float = 0.0, high: float = 1.0) -> Task:
    """``task`` whose loss sees ``batch["x"]`` replaced by ``dequantize(k_u, batch["x"], K, low, high)``
    with ``k_u`` split from the step's key (the rest of the key goes to ``task.loss``), so every step
    and every run of a sweep draws its own noise. ``batch["x"]`` must lie on the grid ``low + (high -
    low) k / (K - 1)``. ``init`` and ``apply`` are unchanged."""

    def loss(params, model_state, batch, key, train):
        k_u, k_task = jax.random.split(key)
        batch = {**batch, "x": dequantize(k_u, batch["x"], num_levels, low, high)}
        return task.loss(params, model_state, batch, k_task, train)

    return Task(init=task.init, loss=loss, apply=task.apply)
