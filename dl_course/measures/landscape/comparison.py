"""Comparing two trained solutions by their loss landscapes: filter-normalized 1D slices around
each and the straight path between them.

Keskar, Mudigere, Nocedal, Smelyanskiy & Tang (2017, ICLR), Fig. 3: the loss along
``θ(α) = (1 − α) θ_a + α θ_b`` between a small- and a large-batch solution; Li, Xu, Taylor,
Studer & Goldstein (2018, NeurIPS), §4: 1D slices ``L(θ + α d)`` along a random direction ``d``
filter-normalized to ``θ`` (each filter of ``d`` rescaled to the norm of the matching filter of
``θ``; biases and other 1D parameters left at 0) make the widths of different solutions
comparable despite the scale invariances of ReLU networks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.measures.landscape.slices import filter_normalized_direction, interpolate, slice_1d


def dataset_metrics_fn(task, data, model_state=None) -> Callable[[Any], dict]:
    """``params -> {train,test}_{loss,accuracy}``: ``task``'s mean loss and accuracy on the whole
    training and test sets of ``data``, in eval mode (no dropout; batch-norm running statistics
    from ``model_state``, ``{}`` for a model without state)."""
    tr = {"x": jnp.asarray(data.x_train), "y": jnp.asarray(data.y_train)}
    te = {"x": jnp.asarray(data.x_test), "y": jnp.asarray(data.y_test)}
    state = {} if model_state is None else model_state
    key = jax.random.PRNGKey(0)  # unused in eval mode; the engine's convention

    def fn(params):
        out = {}
        for name, batch in (("train", tr), ("test", te)):
            loss, (_, m) = task.loss(params, state, batch, key, False)
            out[f"{name}_loss"], out[f"{name}_accuracy"] = loss, m["accuracy"]
        return out

    return fn


def compare_solutions(fn: Callable[[Any], Any], params_pair, *, key, slice_alphas, interp_alphas) -> dict:
    """Landscapes of the two solutions stacked on the leading axis of ``params_pair``.

    ``slices``: ``fn(θ_i + α d_i)`` for ``α`` in ``slice_alphas``, ``d_i`` a filter-normalized
    Gaussian direction drawn with ``split(key, 2)[i]`` (the pair vmapped in one program): leaves
    ``[2, len(slice_alphas)]``. ``interp``: ``fn((1 − β) θ_0 + β θ_1)`` for ``β`` in
    ``interp_alphas``: leaves ``[len(interp_alphas)]``. Returns numpy arrays and both grids.
    """
    alphas, betas = jnp.asarray(slice_alphas), jnp.asarray(interp_alphas)

    def one_slice(params, k):
        return slice_1d(fn, params, filter_normalized_direction(k, params), alphas)

    slices = jax.jit(jax.vmap(one_slice))(params_pair, jax.random.split(key, 2))
    first = jax.tree.map(lambda x: x[0], params_pair)
    second = jax.tree.map(lambda x: x[1], params_pair)
    interp = jax.jit(lambda a, b: interpolate(fn, a, b, betas))(first, second)
    return {"slice_alphas": np.asarray(alphas), "slices": jax.tree.map(np.asarray, slices),
            "interp_alphas": np.asarray(betas), "interp": jax.tree.map(np.asarray, interp)}
