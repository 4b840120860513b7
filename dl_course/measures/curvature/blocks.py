"""Per-layer (block) curvature: traces, top eigenvalues and spectral densities of the diagonal
blocks of the Hessian, GGN or any pytree operator, one block per top-level key of ``params``.

For ``params = {"Dense_0": …, "Dense_1": …}`` the block ``H_ll`` is the curvature restricted to
layer ``l`` with every other layer held fixed: ``H_ll v_l = [H (v_l ⊕ 0)]_l``. Since
``tr H = Σ_l tr H_ll``, layer traces say where the curvature lives (per-layer PyHessian, Yao et al.
2020; the layer-wise Hessian spectra of Sankar et al. 2021). For the Hessian the block is the
Hessian of ``θ_l ↦ L(θ with θ_l)``, and its product costs one HVP through that layer only.

Every function works under ``jax.vmap`` over a leading run axis of ``params`` and ``key``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from dl_course.measures.curvature.density import operator_spectral_density
from dl_course.measures.curvature.operators import Operator
from dl_course.measures.curvature.products import hvp
from dl_course.measures.curvature.spectrum import DEFAULT_NUM_ITERS, EigenResult, operator_eigenpairs
from dl_course.measures.curvature.trace import operator_diagonal, operator_trace

PyTree = Any


def _zeros_like(tree: PyTree) -> PyTree:
    return jax.tree_util.tree_map(jax.numpy.zeros_like, tree)


def block_operator(operator: Operator, params: PyTree, name: str) -> Operator:
    """``v_l -> [A (v_l ⊕ 0)]_l``: the diagonal block of a pytree operator for ``params[name]``.

    Costs one product with the full operator; for the Hessian :func:`hessian_block_operator` is
    cheaper."""
    zeros = _zeros_like(params)

    def apply(v_l):
        return operator({**zeros, name: v_l})[name]

    return apply


def hessian_block_operator(loss_fn: Callable[[PyTree], jax.Array], params: PyTree, name: str) -> Operator:
    """``v_l -> ∇²_{θ_l} L(θ) v_l``: the Hessian of the loss in layer ``name`` alone (an HVP that
    differentiates through that layer's parameters only)."""
    restricted = lambda p_l: loss_fn({**params, name: p_l})  # noqa: E731
    return lambda v_l: hvp(restricted, params[name], v_l)


def _blocks(operator: Operator | None, loss_fn: Callable | None, params: PyTree) -> dict:
    if (operator is None) == (loss_fn is None):
        raise ValueError("pass exactly one of operator or loss_fn")
    if not isinstance(params, dict) and not hasattr(params, "keys"):
        raise ValueError(f"block curvature needs a dict of layers, got {type(params).__name__}")
    if loss_fn is not None:
        return {name: hessian_block_operator(loss_fn, params, name) for name in params}
    return {name: block_operator(operator, params, name) for name in params}


def operator_layer_traces(
    params: PyTree,
    *,
    operator: Operator | None = None,
    loss_fn: Callable[[PyTree], jax.Array] | None = None,
    key: jax.Array | None = None,
    num_samples: int = 100,
    exact: bool = False,
    batch_size: int | None = None,
) -> dict[str, tuple[jax.Array, jax.Array]]:
    """``{name: (tr A_ll estimate, stderr)}`` for each top-level key of ``params``.

    Hutchinson with ``num_samples`` Rademacher probes *supported on the block* (so the variance
    is ``2 Σ_{i≠j∈l} (A_ll)_ij² / m``, not that of the whole operator), independent across blocks
    (``fold_in(key, index of the block)``); ``exact=True`` sums the exact block diagonal
    (one product per parameter; stderr 0). The block comes from ``loss_fn`` (Hessian) or
    ``operator``."""
    out = {}
    for i, (name, op) in enumerate(_blocks(operator, loss_fn, params).items()):
        if exact:
            diag = operator_diagonal(op, params[name], exact=True, batch_size=batch_size)
            total = sum(jax.numpy.sum(d) for d in jax.tree_util.tree_leaves(diag))
            out[name] = (total, jax.numpy.zeros_like(total))
        else:
            if key is None:
                raise ValueError("stochastic layer traces need a key (or pass exact=True)")
            out[name] = operator_trace(
                op, params[name], key=jax.random.fold_in(key, i), num_samples=num_samples,
                batch_size=batch_size,
            )
    return out


def layer_traces(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    *,
    key: jax.Array,
    num_samples: int = 100,
    batch_size: int | None = None,
) -> dict[str, jax.Array]:
    """``{top-level params key: Hutchinson estimate of tr ∇²_{θ_l} L}``; the layer traces sum to
    an unbiased estimate of ``tr ∇²L``. Standard errors: :func:`operator_layer_traces`."""
    traces = operator_layer_traces(
        params, loss_fn=loss_fn, key=key, num_samples=num_samples, batch_size=batch_size
    )
    return {name: est for name, (est, _) in traces.items()}


def layer_eigenpairs(
    params: PyTree,
    k: int = 1,
    *,
    key: jax.Array,
    operator: Operator | None = None,
    loss_fn: Callable[[PyTree], jax.Array] | None = None,
    num_iters: int = DEFAULT_NUM_ITERS,
    which: str = "top",
) -> dict[str, EigenResult]:
    """``{name: EigenResult}``: extreme eigenpairs (with Ritz residuals) of each diagonal block,
    by Lanczos with full reorthogonalization (:func:`operator_eigenpairs`), ``num_iters`` block
    products per layer. By Cauchy interlacing ``λmax(A_ll) ≤ λmax(A)`` for every layer."""
    return {
        name: operator_eigenpairs(
            op, params[name], k, key=jax.random.fold_in(key, i), num_iters=num_iters, which=which
        )
        for i, (name, op) in enumerate(_blocks(operator, loss_fn, params).items())
    }


def layer_top_eigenvalues(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    k: int = 1,
    *,
    key: jax.Array,
    num_iters: int = DEFAULT_NUM_ITERS,
) -> dict[str, jax.Array]:
    """``{top-level params key: top-k eigenvalues (descending) of ∇²_{θ_l} L}`` (Lanczos; see
    :func:`layer_eigenpairs` for eigenvectors and residuals)."""
    res = layer_eigenpairs(params, k, key=key, loss_fn=loss_fn, num_iters=num_iters)
    return {name: r.eigenvalues for name, r in res.items()}


def layer_spectral_densities(
    params: PyTree,
    *,
    key: jax.Array,
    operator: Operator | None = None,
    loss_fn: Callable[[PyTree], jax.Array] | None = None,
    num_probes: int = 10,
    num_iters: int = 60,
    num_points: int = 1024,
    sigma_rel: float = 0.01,
) -> dict[str, tuple[jax.Array, jax.Array]]:
    """``{name: (grid, density)}``: SLQ spectral density of each diagonal block (Ghorbani et al.
    2019's estimator, :func:`operator_spectral_density`), each integrating to 1 on its grid."""
    return {
        name: operator_spectral_density(
            op, params[name], key=jax.random.fold_in(key, i), num_probes=num_probes,
            num_iters=num_iters, num_points=num_points, sigma_rel=sigma_rel,
        )
        for i, (name, op) in enumerate(_blocks(operator, loss_fn, params).items())
    }
