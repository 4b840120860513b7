"""Recomputing batch-norm statistics for new weights (Izmailov et al. 2018, SWA, §3.2; Maddox et
al. 2019 do it for every SWAG sample).

The running averages stored in ``batch_stats`` belong to the weights they were accumulated with. An
averaged (SWA) or sampled (SWAG) weight vector was never trained, so its statistics must be
recomputed with one pass over training inputs before evaluation.

What is computed. Like the reference ``bn_update`` (PyTorch, ``momentum=None``), the network is run
in train mode over the inputs in minibatches, so every BatchNorm layer normalises with the batch's
statistics and deeper layers see train-mode activations. Instead of an exponential moving average
(whose result depends on the batch order and on flax's ``momentum``), we return the EXACT pooled
statistics of every BatchNorm layer's inputs over all N examples of those passes:

    mean = (1/N) Σ_i a_i,        var = (1/N) Σ_i (a_i − mean)²    (biased, flax's convention),

combined across batches with Chan et al.'s (1979) parallel update (no E[a²] − E[a]² cancellation).
For the first BatchNorm layer this is exactly the population statistics of its inputs whatever the
batch size; deeper layers depend (weakly) on the batch composition, as in every train-mode pass.

How. flax's BatchNorm in train mode stores ``m · old + (1 − m) · batch_stat``. Each batch is run
from zeroed statistics and the batch statistic recovered as ``new / (1 − m)``, with each layer's
momentum ``m`` read from the module itself (``nn.intercept_methods``). Weights are never touched.
Dropout is active during the passes (train mode), driven by the given key.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util


def _batchnorm_momenta(model: nn.Module, variables, x_batch, key) -> dict[tuple, float]:
    """``{module path: momentum}`` of every BatchNorm called in a train-mode forward pass."""
    momenta: dict[tuple, float] = {}

    def interceptor(next_fun, args, kwargs, context):
        if isinstance(context.module, nn.BatchNorm) and context.method_name == "__call__":
            momenta[tuple(context.module.path)] = float(context.module.momentum)
        return next_fun(*args, **kwargs)

    def forward(v, xb, k):
        return model.apply(v, xb, train=True, mutable=["batch_stats"], rngs={"dropout": k})

    with nn.intercept_methods(interceptor):
        jax.eval_shape(forward, variables, x_batch, key)
    return momenta


def _batch_statistics(model, params, model_state, x_batch, key, one_minus_m):
    """Per-layer (mean, var) of one train-mode batch, as flat dicts keyed like ``flatten_dict``."""
    zeros = jax.tree_util.tree_map(jnp.zeros_like, model_state["batch_stats"])
    variables = {**model_state, "params": params, "batch_stats": zeros}
    _, updates = model.apply(
        variables, x_batch, train=True, mutable=["batch_stats"], rngs={"dropout": key}
    )
    flat = traverse_util.flatten_dict(updates["batch_stats"])
    return {path: value / one_minus_m[path] for path, value in flat.items()}


def refresh_batch_stats(
    model: nn.Module,
    params,
    model_state: dict[str, Any],
    x: jax.Array,
    batch_size: int,
    key: jax.Array,
) -> dict[str, Any]:
    """Returns ``model_state`` with ``batch_stats`` replaced by the exact pooled train-mode
    statistics of ``x`` under ``params`` (see the module docstring); other collections and the
    weights are unchanged. A model without ``batch_stats`` gets its ``model_state`` back unchanged.

    Args:
      model: a flax module with ``__call__(x, train: bool)``.
      params: the weights to compute statistics for (e.g. a SWAG sample).
      model_state: non-parameter collections; its ``batch_stats`` gives the tree structure.
      x: inputs ``[N, ...]`` (training inputs); ``N // batch_size`` full batches run under
        ``lax.scan``, a remainder batch (if any) once more.
      batch_size: examples per train-mode pass (train-mode normalisation statistics need > 1).
      key: PRNG key for dropout during the passes (batch b uses ``fold_in(key, b)``).

    Jit- and vmap-compatible (e.g. vmapped over SWAG samples).
    """
    if "batch_stats" not in model_state or not jax.tree_util.tree_leaves(model_state["batch_stats"]):
        return model_state
    n = x.shape[0]
    batch_size = min(int(batch_size), n)
    num_full = n // batch_size

    momenta = _batchnorm_momenta(model, {**model_state, "params": params}, x[:batch_size], key)
    flat_stats = traverse_util.flatten_dict(model_state["batch_stats"])
    one_minus_m = {}
    for path in flat_stats:
        if path[:-1] not in momenta:
            raise ValueError(
                f"batch_stats entry {path} does not belong to an nn.BatchNorm called directly in a "
                "train-mode forward pass; cannot recover its batch statistics."
            )
        if momenta[path[:-1]] >= 1.0:
            raise ValueError(f"BatchNorm at {path[:-1]} has momentum 1 (frozen statistics); nothing to refresh.")
        one_minus_m[path] = 1.0 - momenta[path[:-1]]

    def stats(xb, b):
        return _batch_statistics(model, params, model_state, xb, jax.random.fold_in(key, b), one_minus_m)

    def combine(acc, batch, count_b):
        """Chan et al. (1979): pool (count, mean, M2) of the accumulator with a batch's."""
        count_a, mean_a, m2_a = acc
        total = count_a + count_b
        new_mean, new_m2 = {}, {}
        for path in mean_a:
            mean_b, var_b = batch[path[:-1] + ("mean",)], batch[path[:-1] + ("var",)]
            delta = mean_b - mean_a[path]
            new_mean[path] = mean_a[path] + delta * (count_b / total)
            new_m2[path] = m2_a[path] + var_b * count_b + delta**2 * (count_a * count_b / total)
        return total, new_mean, new_m2

    mean_paths = [p for p in flat_stats if p[-1] == "mean"]
    init = (
        jnp.zeros((), jnp.float32),
        {p: jnp.zeros_like(flat_stats[p]) for p in mean_paths},
        {p: jnp.zeros_like(flat_stats[p]) for p in mean_paths},
    )
    x_full = x[: num_full * batch_size].reshape((num_full, batch_size) + x.shape[1:])

    def body(acc, inputs):
        xb, b = inputs
        return combine(acc, stats(xb, b), float(batch_size)), None

    acc, _ = jax.lax.scan(body, init, (x_full, jnp.arange(num_full)))
    if n % batch_size:
        acc = combine(acc, stats(x[num_full * batch_size :], num_full), float(n % batch_size))
    count, mean, m2 = acc
    new_flat = {}
    for path in mean_paths:
        new_flat[path] = mean[path].astype(flat_stats[path].dtype)
        var_path = path[:-1] + ("var",)
        new_flat[var_path] = (m2[path] / count).astype(flat_stats[var_path].dtype)
    missing = set(flat_stats) - set(new_flat)
    if missing:
        raise ValueError(f"Unexpected batch_stats entries (expected only mean/var): {sorted(missing)}")
    return {**model_state, "batch_stats": traverse_util.unflatten_dict(new_flat)}
