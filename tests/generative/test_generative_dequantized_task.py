"""``dequantized_task``: every batch the wrapped loss sees is a fresh uniform dequantisation of the
grid data, drawn from the step's key, and the rest of the key reaches the wrapped loss."""

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.generative import dequantize, dequantized_task
from dl_course.train import Task


def test_loss_sees_a_fresh_dequantisation_in_the_right_bins():
    """K = 5 levels on [-1, 1]: the wrapped loss receives exactly ``dequantize(k_u, x)`` with
    ``k_u, k_task = split(key)`` and ``k_task`` itself; every value lies in its own level's bin
    ``[low + a k, low + a (k + 1))``, ``a = (high - low) / K``; two keys give different noise."""
    levels, low, high = 5, -1.0, 1.0
    k = np.random.default_rng(0).integers(0, levels, size=(64, 3))
    x = jnp.asarray(low + (high - low) * k / (levels - 1), jnp.float32)
    seen = {}

    def loss(params, model_state, batch, key, train):
        seen["x"], seen["key"] = batch["x"], key
        return jnp.mean(batch["x"]), (model_state, {})

    task = dequantized_task(Task(init=lambda key, x: ({}, {}), loss=loss), levels, low, high)
    key = jax.random.key(3)
    task.loss({}, {}, {"x": x, "y": jnp.zeros(64)}, key, True)
    k_u, k_task = jax.random.split(key)
    np.testing.assert_array_equal(seen["x"], dequantize(k_u, x, levels, low, high))
    assert jnp.array_equal(jax.random.key_data(seen["key"]), jax.random.key_data(k_task))
    a = (high - low) / levels
    y = np.asarray(seen["x"], np.float64)
    assert np.all(y >= low + a * k - 1e-6) and np.all(y < low + a * (k + 1) + 1e-6)
    first = y.copy()
    task.loss({}, {}, {"x": x, "y": jnp.zeros(64)}, jax.random.key(4), True)
    assert np.abs(np.asarray(seen["x"]) - first).max() > 0.1 * a
