"""Curvature tracking during training: a :class:`~dl_course.train.hooks.Hook` for the sweep.

At every evaluation point of every run (the engine vmaps the hook over runs) the tracker measures
the top Hessian eigenvalue(s) of the measurement-set loss ``ctx.loss_fn`` by block Krylov
Rayleigh–Ritz (Lanczos in block form), warm-started from the top Ritz vectors found at the
previous evaluation (kept in the hook state), and optionally the Hutchinson trace and Adam's
preconditioned sharpness (Cohen et al. 2022). Between two nearby points of training the top
eigenvectors change little, so a warm start needs far fewer HVPs than a cold one for the same
Ritz residual; where top eigenvalues cross (the edge of stability) the block keeps both.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dl_course.measures.curvature.krylov import block_krylov, extreme_ritz_pairs
from dl_course.measures.curvature.operators import flat_operator, hessian_operator
from dl_course.measures.curvature.preconditioned import adam_preconditioner, preconditioned_operator
from dl_course.measures.curvature.products import DEFAULT_HVP_METHOD
from dl_course.measures.curvature.trace import operator_trace
from dl_course.train.hooks import Hook, HookContext


class SharpnessTrackerState(NamedTuple):
    """Warm starts kept between evaluations (zeros before the first measurement), flat ``(·, d)``.

    Attributes:
      eigenvectors: ``(k, d)`` the top-``k`` Ritz vectors of the last evaluation.
      preconditioned_eigenvectors: the same for the preconditioned operator, ``None`` unless
        tracked.
      next_vectors: ``(block_size − k, d)`` the Ritz vectors ranked ``k+1 … block_size`` (``None``
        if ``block_size ≤ k``): with ``eigenvectors`` they form the warm-start block.
      preconditioned_next_vectors: the same for the preconditioned operator.
    """

    eigenvectors: jax.Array
    preconditioned_eigenvectors: jax.Array | None
    next_vectors: jax.Array | None = None
    preconditioned_next_vectors: jax.Array | None = None


def _top(operator, params, previous, k, num_iters, key):
    """Block Krylov (:func:`~dl_course.measures.curvature.krylov.block_krylov`) warm-started from the
    previous Ritz vectors ``previous (b, d)`` (zero before the first measurement: then a random
    start, i.e. plain Lanczos). Returns the top ``k`` values and residuals and the new top ``b``
    vectors, kept unchanged if the measurement is not finite (e.g. before Adam's first step)."""
    matvec, flat, _ = flat_operator(operator, params)
    z = jax.random.normal(key, (2,) + flat.shape, flat.dtype)
    previous = previous.astype(flat.dtype)
    cold = ~jnp.any(previous != 0)
    start = jnp.concatenate([previous, jnp.where(cold, z[0], jnp.zeros_like(z[0]))[None]])
    res = block_krylov(matvec, start, num_iters, restart=z[1])
    values, vectors, residuals = extreme_ritz_pairs(res, previous.shape[0], "top")
    ok = jnp.all(jnp.isfinite(vectors)) & jnp.all(jnp.isfinite(res.ritz_values))
    return values[:k], residuals[:k], jnp.where(ok, vectors, previous)


def _split(vectors, k):
    return vectors[:k], (vectors[k:] if vectors.shape[0] > k else None)


def _join(top, rest):
    return top if rest is None else jnp.concatenate([top, rest])


@functools.lru_cache(maxsize=64)
def sharpness_tracker(
    k: int = 1,
    num_iters: int = 20,
    block_size: int = 2,
    trace_samples: int = 0,
    preconditioned: bool = False,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    prefix: str = "",
    hvp_method: str = DEFAULT_HVP_METHOD,
) -> Hook:
    """A hook measuring curvature at every evaluation point of every run.

    Metrics returned by ``on_eval`` (per run; the sweep stacks them to ``[run, eval_point, ...]``):

    * ``lambda_max``, ``lambda_max_residual``: top Hessian eigenvalue of ``ctx.loss_fn`` and its
      Ritz residual ``‖Hu − λu‖`` (an eigenvalue lies within it), by Rayleigh–Ritz on the block
      Krylov space of the previous evaluation's top ``block_size`` Ritz vectors, ``num_iters``
      HVPs (:func:`~dl_course.measures.curvature.krylov.block_krylov`; a random start, i.e. Lanczos, the
      first time);
    * if ``k > 1``: ``top_eigenvalues`` and ``top_eigenvalue_residuals`` of shape ``[k]``;
    * if ``trace_samples > 0``: ``hessian_trace`` and ``hessian_trace_stderr`` (Hutchinson);
    * if ``preconditioned``: ``preconditioned_sharpness`` and its ``_residual``, the top
      eigenvalue of ``P^{-1/2} H P^{-1/2}`` with Adam's ``P = (1 − β1ᵗ)(√v̂ + ε)`` read from the
      Adam state in ``ctx.opt_state`` (see :mod:`dl_course.measures.curvature.preconditioned`; compare with
      ``adam_stability_threshold``). ``β1, β2, ε`` are taken from ``ctx.hparams`` (keys ``b1``,
      ``b2``, ``eps``) when swept there, else from this function's arguments. ``nan`` before
      Adam's first update.

    Every metric name is prefixed with ``prefix`` (e.g. to run two trackers in one sweep).
    The cost per evaluation is ``num_iters`` HVPs (plus ``num_iters`` for the preconditioned
    sharpness and ``trace_samples`` for the trace), nothing more: the relative overhead is about
    ``num_iters × (HVP/gradient cost ≈ 2) / eval_every`` for full-batch GD
    (``benchmarks/bench_hvp.py``).

    Accuracy (the setting of ``benchmarks/bench_curvature.py``: 4 step sizes of full-batch GD on the
    edge-of-stability problem, evaluation every 100 steps; errors against cold 120-step Lanczos
    at the same points): at the edge of stability several eigenvalues hover within a few percent
    of ``2/η`` and their eigenvectors mix completely between evaluations, so the top one changes
    identity. A single warm-start vector (the previous top eigenvector, or the sum of the previous
    few) then needs ~40 HVPs for a relative error ≤ 1e-3 (the gap to the partner can be 0.2%:
    20 HVPs gave max errors 1.3e-3–2.6e-2). A block of the previous top two Ritz vectors
    contains both partners, and Rayleigh–Ritz on its Krylov space resolves them: the defaults
    (``num_iters=20``, ``block_size=2``) gave a max error of 2.5e-4 (median 3e-6) over every
    evaluation; 18 HVPs 7e-4, 16 HVPs 2.5e-3 (after the catapult of the first steps the old
    block is useless and its Krylov space, of depth ``num_iters / block_size``, is too shallow).
    ``lambda_max_residual / lambda_max`` bounds the relative distance to *an* eigenvalue at
    every point.

    ``hvp_method``: see :func:`~dl_course.measures.curvature.operators.hessian_operator` (one operator per
    evaluation, shared by the measures).

    The same arguments give the same hook object, so a sweep repeated with the same engine
    config reuses its compiled program (the sweep's cache is keyed by hook identity).
    """
    block = max(k, block_size)
    if k < 1 or num_iters < block:
        raise ValueError(f"need 1 <= k and max(k, block_size) <= num_iters, got k={k}, "
                         f"block_size={block_size}, num_iters={num_iters}")

    def init(ctx: HookContext) -> SharpnessTrackerState:
        flat = ravel_pytree(ctx.params)[0]
        top, rest = _split(jnp.zeros((block,) + flat.shape, flat.dtype), k)
        return SharpnessTrackerState(top, top if preconditioned else None, rest,
                                     rest if preconditioned else None)

    def on_eval(state: SharpnessTrackerState, ctx: HookContext):
        key_h, key_t, key_p = jax.random.split(ctx.key, 3)
        hess = hessian_operator(ctx.loss_fn, ctx.params, hvp_method)  # shared by every measure below
        values, residuals, vectors = _top(
            hess, ctx.params, _join(state.eigenvectors, state.next_vectors)[:block], k, num_iters, key_h
        )
        metrics = {"lambda_max": values[0], "lambda_max_residual": residuals[0]}
        if k > 1:
            metrics["top_eigenvalues"] = values
            metrics["top_eigenvalue_residuals"] = residuals
        if trace_samples > 0:
            est, se = operator_trace(hess, ctx.params, key=key_t, num_samples=trace_samples)
            metrics["hessian_trace"], metrics["hessian_trace_stderr"] = est, se
        pre_vectors = None
        if preconditioned:
            hp = ctx.hparams
            p = adam_preconditioner(
                ctx.opt_state, hp.get("b1", b1), hp.get("b2", b2), hp.get("eps", eps)
            )
            pvalues, presiduals, pre_vectors = _top(
                preconditioned_operator(hess, p), ctx.params,
                _join(state.preconditioned_eigenvectors, state.preconditioned_next_vectors)[:block],
                k, num_iters, key_p,
            )
            metrics["preconditioned_sharpness"] = pvalues[0]
            metrics["preconditioned_sharpness_residual"] = presiduals[0]
        top, rest = _split(vectors, k)
        ptop, prest = _split(pre_vectors, k) if preconditioned else (None, None)
        new_state = SharpnessTrackerState(top, ptop, rest, prest)
        return new_state, {prefix + name: v for name, v in metrics.items()}

    return Hook(init=init, on_eval=on_eval)
