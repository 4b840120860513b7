"""SWA and SWAG: a Gaussian posterior from the SGD iterates (Maddox et al. 2019, "A simple baseline
for Bayesian uncertainty in deep learning", NeurIPS; SWA: Izmailov et al. 2018).

During the SWA phase of training the parameters θ_1, …, θ_n are collected every ``collect_every``
optimizer steps from ``start_step`` on (Maddox et al. collect once per epoch). The collector keeps

* the running mean ``θ̄_n = (1/n) Σ_i θ_i`` (the SWA solution),
* the second central moment via Welford's update (``m2 = Σ_i (θ_i − θ̄_n)²``, so the diagonal
  variance is ``Σ_diag = m2 / n``; in exact arithmetic this is the paper's ``\\bar{θ²} − θ̄²``, but
  it does not cancel catastrophically in float32 when |θ| ≫ std(θ)),
* the last K deviations ``D_i = θ_i − θ̄_i`` (θ̄_i the running mean *including* θ_i, as in the
  paper's Algorithm 1 and reference code) in a ring buffer, leaves of shape ``[K, ...]``.

The collector is written in optax's ``init``/``update`` style with a NamedTuple state and branch-free
``jnp.where`` updates, so it runs inside the engine's jitted, vmapped training step through
``swag_hook`` (a ``dl_course.train.hooks.Hook``): one SWAG posterior per run of a sweep, i.e.
MultiSWAG over seeds (Wilson & Izmailov 2020) for free.

Posteriors (``POSTERIORS``), with ``K' = min(n, K)`` collected deviations and ``z₁ ~ N(0, I_d)``,
``z₂ ~ N(0, I_K)``; ``scale`` multiplies the posterior covariance:

* ``swa``:       θ = θ̄ (a point mass);
* ``swag_diag``: θ = θ̄ + √scale · Σ_diag^{1/2} z₁,                         default scale = 1,
  i.e. N(θ̄, Σ_diag) as in the paper;
* ``swag``:      θ = θ̄ + √scale · (Σ_diag^{1/2} z₁ + D z₂ / √(K'−1)),       default scale = 0.5,
  i.e. N(θ̄, ½(Σ_diag + D Dᵀ/(K'−1))), exactly the paper's
  θ̄ + (1/√2) Σ_diag^{1/2} z₁ + (1/√(2(K−1))) D z₂.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dl_course.errors import ConfigError
from dl_course.train.hooks import Hook, HookContext

DEFAULT_SCALES = {"swa": 0.0, "swag_diag": 1.0, "swag": 0.5}


class SWAGState(NamedTuple):
    """Moments of the collected iterates.

    Attributes:
      n: int32 scalar, number of snapshots collected so far.
      mean: pytree like params, ``θ̄_n``.
      m2: pytree like params, ``Σ_i (θ_i − θ̄_n)²`` (Welford); ``Σ_diag = m2 / n``.
      deviations: pytree with leaves ``[K, *leaf.shape]``: the last K deviations ``θ_i − θ̄_i`` in a
        ring buffer (snapshot i in slot ``(i − 1) mod K``); never-written slots are zero.
    """

    n: jax.Array
    mean: Any
    m2: Any
    deviations: Any


class SWAGCollector(NamedTuple):
    """``init(params) -> SWAGState`` and ``update(state, params, step) -> SWAGState``."""

    init: Callable[[Any], SWAGState]
    update: Callable[[SWAGState, Any, Any], SWAGState]


def swag(num_deviations: int = 20, *, collect_every: int, start_step: int) -> SWAGCollector:
    """The SWAG moment collector (Maddox et al. 2019, Algorithm 1), optax style.

    ``update(state, params, step)`` collects ``params`` iff ``step >= start_step`` and
    ``(step − start_step) % collect_every == 0``, where ``step`` is the number of optimizer steps
    that produced ``params``. Collection is a ``jnp.where`` select (no Python branch), so it is
    correct under ``jax.vmap`` and ``lax.scan``; ``step``, ``start_step`` and ``collect_every`` may be
    traced. ``num_deviations`` (K, default 20 as in the paper) fixes the buffer shape; K = 0 keeps
    only the diagonal (SWAG-diagonal / SWA).

    Update for a collected θ (n ← n + 1):
        δ = θ − θ̄;  θ̄ ← θ̄ + δ/n;  m2 ← m2 + δ ⊙ (θ − θ̄);  D[(n−1) mod K] ← θ − θ̄.
    """
    if num_deviations < 0:
        raise ValueError(f"num_deviations must be >= 0, got {num_deviations}")
    k = int(num_deviations)

    def init(params) -> SWAGState:
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        devs = jax.tree_util.tree_map(lambda p: jnp.zeros((k,) + jnp.shape(p), jnp.result_type(p)), params)
        return SWAGState(n=jnp.zeros((), jnp.int32), mean=zeros, m2=zeros, deviations=devs)

    def update(state: SWAGState, params, step) -> SWAGState:
        step = jnp.asarray(step)
        collect = (step >= start_step) & ((step - start_step) % collect_every == 0)
        n_new = state.n + 1

        def moments(p, mean, m2):
            delta = p - mean
            new_mean = mean + delta / n_new.astype(mean.dtype)
            return new_mean, m2 + delta * (p - new_mean)

        flat_p, treedef = jax.tree_util.tree_flatten(params)
        flat_mean = treedef.flatten_up_to(state.mean)
        flat_m2 = treedef.flatten_up_to(state.m2)
        flat_dev = treedef.flatten_up_to(state.deviations)
        out_mean, out_m2, out_dev = [], [], []
        slot = state.n % max(k, 1)
        for p, mean, m2, dev in zip(flat_p, flat_mean, flat_m2, flat_dev):
            new_mean, new_m2 = moments(p, mean, m2)
            out_mean.append(jnp.where(collect, new_mean, mean))
            out_m2.append(jnp.where(collect, new_m2, m2))
            if k > 0:
                # Select on the one row (O(d) per step), not on the whole [K, d] buffer.
                old_row = jax.lax.dynamic_index_in_dim(dev, slot, 0, keepdims=False)
                row = jnp.where(collect, (p - new_mean).astype(dev.dtype), old_row)
                dev = jax.lax.dynamic_update_index_in_dim(dev, row, slot, 0)
            out_dev.append(dev)
        unflatten = lambda leaves: jax.tree_util.tree_unflatten(treedef, leaves)
        return SWAGState(
            n=jnp.where(collect, n_new, state.n),
            mean=unflatten(out_mean),
            m2=unflatten(out_m2),
            deviations=unflatten(out_dev),
        )

    return SWAGCollector(init, update)


def swag_hook(num_deviations: int = 20, *, collect_every: int, start_step: int) -> Hook:
    """``swag(...)`` as an engine hook: ``on_step`` collects ``ctx.params`` at ``ctx.step``.

    The final ``SWAGState`` of every run lands in ``SweepResult.state.extras[<hook name>]`` (leading
    run axis); sample from it with ``sample`` / ``bma.swag_predictive`` per run.
    """
    collector = swag(num_deviations, collect_every=collect_every, start_step=start_step)

    def init(ctx: HookContext) -> SWAGState:
        return collector.init(ctx.params)

    def on_step(state: SWAGState, ctx: HookContext) -> SWAGState:
        return collector.update(state, ctx.params, ctx.step)

    return Hook(init=init, on_step=on_step)


def num_collected_deviations(state: SWAGState) -> jax.Array:
    """``K' = min(n, K)``: how many rows of the deviation buffer hold snapshots."""
    k = jax.tree_util.tree_leaves(state.deviations)[0].shape[0]
    return jnp.minimum(state.n, k)


def variance(state: SWAGState):
    """``Σ_diag = m2 / n = (1/n) Σ_i (θ_i − θ̄_n)²`` (the biased snapshot variance; 0 if n = 0)."""
    n = jnp.maximum(state.n, 1)
    return jax.tree_util.tree_map(lambda m2: jnp.maximum(m2 / n.astype(m2.dtype), 0.0), state.m2)


def deviation_matrix(state: SWAGState):
    """The deviation buffer in chronological order: leaves ``[K, ...]``, oldest kept snapshot
    first; rows ``K', …, K−1`` are zero while fewer than K snapshots have been collected."""
    k = num_collected_deviations(state)
    shift = jnp.where(state.n > k, state.n % jnp.maximum(k, 1), 0)
    return jax.tree_util.tree_map(lambda d: jnp.roll(d, -shift, axis=0), state.deviations)


def _standard_normal_like(key, tree):
    """``z ~ N(0, I)`` shaped like ``tree``: one draw of the raveled size, unraveled (a single
    random-bits computation instead of one per leaf)."""
    flat, unravel = ravel_pytree(tree)
    return unravel(jax.random.normal(key, flat.shape, flat.dtype))


def sample_swa(state: SWAGState, key: jax.Array | None = None, scale: float | None = None):
    """SWA (Izmailov et al. 2018): the point estimate θ̄. ``key`` and ``scale`` are ignored."""
    del key, scale
    return state.mean


def sample_swag_diag(state: SWAGState, key: jax.Array, scale: float | None = None):
    """θ = θ̄ + √scale · Σ_diag^{1/2} z,  z ~ N(0, I); default scale = 1 (N(θ̄, Σ_diag))."""
    scale = DEFAULT_SCALES["swag_diag"] if scale is None else scale
    return jax.tree_util.tree_map(
        lambda m, v, z: m + jnp.sqrt(scale) * jnp.sqrt(v) * z,
        state.mean, variance(state), _standard_normal_like(key, state.mean),
    )


def sample_swag(state: SWAGState, key: jax.Array, scale: float | None = None):
    """θ = θ̄ + √scale · (Σ_diag^{1/2} z₁ + D z₂ / √(K'−1)); default scale = ½, which is
    Maddox et al. (2019) eq. (3): θ̄ + (1/√2) Σ_diag^{1/2} z₁ + (1/√(2(K−1))) D z₂.

    ``D`` holds the K' = min(n, K) collected deviations as columns (never-written rows are zero and
    do not contribute); the normaliser uses K', so a partially filled buffer is still a covariance
    estimate of the right size.
    """
    scale = DEFAULT_SCALES["swag"] if scale is None else scale
    k_diag, k_low = jax.random.split(key)
    k = jax.tree_util.tree_leaves(state.deviations)[0].shape[0]
    if k == 0:
        raise ValueError("Full SWAG needs num_deviations >= 2; this state has none (use swag_diag).")
    diag_part = jax.tree_util.tree_map(
        lambda v, z: jnp.sqrt(v) * z, variance(state), _standard_normal_like(k_diag, state.mean)
    )
    z2 = jax.random.normal(k_low, (k,), jax.tree_util.tree_leaves(state.mean)[0].dtype)
    denom = jnp.sqrt(jnp.maximum(num_collected_deviations(state) - 1, 1).astype(z2.dtype))
    low_rank = jax.tree_util.tree_map(lambda d: jnp.tensordot(z2, d, axes=1) / denom, state.deviations)
    return jax.tree_util.tree_map(
        lambda m, a, b: m + jnp.sqrt(scale) * (a + b), state.mean, diag_part, low_rank
    )


POSTERIORS: dict[str, Callable[..., Any]] = {
    "swa": sample_swa,
    "swag_diag": sample_swag_diag,
    "swag": sample_swag,
}


def sample(state: SWAGState, key: jax.Array, method: str = "swag", scale: float | None = None):
    """One parameter sample from the ``method`` posterior (``swa``, ``swag_diag``, ``swag``);
    ``scale=None`` takes the method's default (``DEFAULT_SCALES``: 1 for swag_diag, ½ for swag)."""
    if method not in POSTERIORS:
        raise ValueError(f"Unknown SWAG posterior {method!r}; valid: {', '.join(POSTERIORS)}")
    return POSTERIORS[method](state, key, scale)


def dense_covariance(state: SWAGState, method: str = "swag", scale: float | None = None) -> jax.Array:
    """The ``d × d`` covariance that ``sample(state, ·, method, scale)`` draws from, over the
    parameters raveled with ``jax.flatten_util.ravel_pytree`` (for small models and tests):
    ``scale · diag(Σ_diag)`` (swag_diag) or ``scale · (diag(Σ_diag) + D Dᵀ/(K'−1))`` (swag)."""
    if method not in POSTERIORS:
        raise ValueError(f"Unknown SWAG posterior {method!r}; valid: {', '.join(POSTERIORS)}")
    scale = DEFAULT_SCALES[method] if scale is None else scale
    var, _ = ravel_pytree(variance(state))
    cov = jnp.diag(var)
    if method == "swa":
        return jnp.zeros_like(cov)
    if method == "swag":
        d = jax.vmap(lambda t: ravel_pytree(t)[0])(state.deviations)  # [K, d]
        denom = jnp.maximum(num_collected_deviations(state) - 1, 1).astype(d.dtype)
        cov = cov + d.T @ d / denom
    return scale * cov


def swag_schedule(steps: int, batch_size: int, n_train: int, *, start_fraction: float, collect_every: int = 0,
                  num_deviations: int = 20) -> dict:
    """When SWAG collects: from step ``round(start_fraction · steps)`` every ``collect_every`` steps
    (0 = once per epoch of ``n_train // batch_size`` steps, as Maddox et al.); raises
    ``ConfigError`` if fewer than 2 snapshots fit."""
    steps, bs = int(steps), int(batch_size)
    per_epoch = 1 if bs == 0 else max(1, n_train // bs)
    every = int(collect_every) or per_epoch
    start = int(round(float(start_fraction) * steps))
    if not 0 < start <= steps:
        raise ConfigError(f"swag.start_fraction {start_fraction} must be in (0, 1]")
    num = (steps - start) // every + 1
    if num < 2:
        raise ConfigError(f"SWAG would collect {num} snapshot(s) (steps {steps}, start {start}, "
                          f"every {every}); need >= 2")
    return {"start_step": start, "collect_every": every, "num_snapshots": num,
            "num_deviations": int(num_deviations), "steps_per_epoch": per_epoch}
