"""Plain (unadjusted) Langevin dynamics with a given data score, and mode weights by nearest mean
(Song & Ermon 2019, "Generative Modeling by Estimating Gradients of the Data Distribution",
Sec. 3.2.2: without annealing, Langevin chains do not recover the relative weights of separated
modes)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def mode_fractions(means, x):
    """``[K]``: the fraction of the points ``x [n, d]`` nearest (Euclidean) to each of ``means [K, d]``."""
    d = jnp.sum((x[:, None, :] - jnp.asarray(means)[None]) ** 2, -1)
    return jnp.mean(jax.nn.one_hot(jnp.argmin(d, -1), d.shape[-1]), 0)


def langevin_dynamics(score: Callable, x, key, step_size, num_steps: int, record_every: int,
                      statistic: Callable):
    """``x ← x + (ε/2) ∇log p(x) + √ε z`` with ``score(x) = ∇log p(x)`` (batch in, batch out),
    ``num_steps`` steps (a multiple of ``record_every``); step ``j`` draws ``z`` from
    ``fold_in(key, j)``.

    Returns the final ``x`` and ``statistic(x)`` of the initial points and after every
    ``record_every`` steps (``num_steps / record_every + 1`` values, stacked).
    """
    def block(x, b):
        def step(j, x):
            z = jax.random.normal(jax.random.fold_in(key, b * record_every + j), x.shape, x.dtype)
            return x + 0.5 * step_size * score(x) + jnp.sqrt(step_size) * z

        x = jax.lax.fori_loop(0, record_every, step, x)
        return x, statistic(x)

    x_final, stats = jax.lax.scan(block, x, jnp.arange(num_steps // record_every))
    return x_final, jnp.concatenate([jnp.asarray(statistic(x))[None], stats])
