"""Norm- and margin-based complexity measures of Jiang et al. (2020), "Fantastic Generalization
Measures and Where to Find Them" (ICLR), Appendix C.1–C.2.

Equation numbers ``(N)`` are those of the paper's appendix (arXiv:1912.02178; the numbering
Dziugaite et al.'s 2020 reference implementation cross-references). Notation: ``d``
layer matrices ``W_1, …, W_d`` (the leaves with ``ndim ≥ 2``, conv kernels reshaped, see
:mod:`dl_course.measures.generalization.norms`; biases and normalization scales are not layers), ``W_i^0`` the
same layers at initialization, ``γ`` the output margin (:func:`output_margin`), ``ω`` the number
of parameters. Products of norms are reported as logarithms, as in the paper, so that they stay
finite in float32 (Kendall's τ is invariant under the monotone ``log``). Every measure is
oriented as a *complexity*: larger values predict a larger generalization gap. All functions are
pure jnp (SVDs through :mod:`dl_course.linalg`) and work under ``jax.vmap`` over a run axis.
The norm measures take a :class:`LayerNorms` (:func:`layer_norms`), so that one SVD per layer
serves all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from dl_course import linalg
from dl_course.measures.generalization.margins import multiclass_margins
from dl_course.measures.generalization.norms import layer_matrices, path_norm

PyTree = Any


def _layers(params: PyTree) -> list[jax.Array]:
    mats = layer_matrices(params)
    if not mats:
        raise ValueError("params has no leaf with ndim >= 2 (no weight matrices)")
    return mats


class LayerNorms(NamedTuple):
    """Squared norms of the ``d`` layer matrices, computed once and shared by the measures.

    Attributes:
      spec: ``‖W_i‖₂²`` (exact SVD), shape ``(d,)``. fro: ``‖W_i‖_F²``.
      dist_spec, dist_fro: the same for ``W_i − W_i^0`` (``None`` without ``init_params``).
    """

    spec: jax.Array
    fro: jax.Array
    dist_spec: jax.Array | None = None
    dist_fro: jax.Array | None = None


def _sq_spec(mats: list[jax.Array]) -> jax.Array:
    return jnp.stack([linalg.svd(w, compute_uv=False)[0] ** 2 for w in mats])


def _sq_fro(mats: list[jax.Array]) -> jax.Array:
    return jnp.stack([jnp.sum(w**2) for w in mats])


def layer_norms(params: PyTree, init_params: PyTree | None = None) -> LayerNorms:
    """:class:`LayerNorms` of ``params`` (and of ``params − init_params`` if given); one SVD per
    layer matrix (and per difference), through :mod:`dl_course.linalg`."""
    mats = _layers(params)
    if init_params is None:
        return LayerNorms(_sq_spec(mats), _sq_fro(mats))
    diffs = [w - w0 for w, w0 in zip(mats, _layers(init_params))]
    return LayerNorms(_sq_spec(mats), _sq_fro(mats), _sq_spec(diffs), _sq_fro(diffs))


def _need_init(norms: LayerNorms) -> None:
    if norms.dist_spec is None:
        raise ValueError("this measure needs the distance from initialization: layer_norms(params, init_params)")


def num_parameters(params: PyTree) -> int:
    """``ω``, the number of parameters (every leaf, biases included), Jiang et al. eq. (20)
    (the VC-dimension proxy). A Python int: it is static under ``jit``/``vmap``."""
    return int(sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))


def output_margin(logits: jax.Array, labels: jax.Array, quantile: float = 0.1) -> jax.Array:
    """``γ``: the ``quantile``-quantile (Jiang et al.: the 10th percentile) of the training margins
    ``f(x_i)_{y_i} − max_{j≠y_i} f(x_i)_j`` (:func:`~dl_course.measures.generalization.margins.multiclass_margins`),
    linearly interpolated (``jnp.quantile``). Jiang et al. take a percentile rather than the
    minimum so that the margin is robust to a few outliers (App. C.1)."""
    return jnp.quantile(multiclass_margins(logits, labels), quantile)


def inverse_margin(margin: jax.Array) -> jax.Array:
    """``1 / γ²``, Jiang et al. eq. (22)."""
    return 1.0 / margin**2


def log_prod_of_spec(norms: LayerNorms) -> jax.Array:
    """``log Π_i ‖W_i‖₂²``, eq. (32) (spectral norm = largest singular value, exact SVD)."""
    return jnp.sum(jnp.log(norms.spec))


def log_prod_of_spec_over_margin(norms: LayerNorms, margin: jax.Array) -> jax.Array:
    """``log (Π_i ‖W_i‖₂² / γ²)``, eq. (31)."""
    return log_prod_of_spec(norms) - jnp.log(margin**2)


def _rebalanced(log_prod: jax.Array, per_layer: jax.Array) -> jax.Array:
    """``log (d · P^{1/d}) = log d + (log P)/d`` for ``d`` layers: the smallest sum of ``d``
    positive numbers with product ``P`` (AM–GM), reached by a rebalancing of the layers."""
    d = per_layer.shape[0]
    return math.log(d) + log_prod / d


def log_sum_of_spec(norms: LayerNorms) -> jax.Array:
    """``log (d · (Π_i ‖W_i‖₂²)^{1/d})``, eq. (35): the sum of squared spectral norms after the
    rebalancing ``W_i → c_i W_i`` (``Π c_i = 1``) that minimizes it, which a ReLU network's
    function does not see."""
    return _rebalanced(log_prod_of_spec(norms), norms.spec)


def log_sum_of_spec_over_margin(norms: LayerNorms, margin: jax.Array) -> jax.Array:
    """``log (d · (Π_i ‖W_i‖₂² / γ²)^{1/d})``, eq. (34)."""
    return _rebalanced(log_prod_of_spec_over_margin(norms, margin), norms.spec)


def fro_over_spec(norms: LayerNorms) -> jax.Array:
    """``Σ_i ‖W_i‖_F² / ‖W_i‖₂²``, eq. (33): the sum of the layers' stable ranks."""
    return jnp.sum(norms.fro / norms.spec)


def log_spec_init_main(norms: LayerNorms, margin: jax.Array) -> jax.Array:
    """``log (Π_i ‖W_i‖₂² / γ² · Σ_i ‖W_i − W_i^0‖_F² / ‖W_i‖₂²)``, eq. (29): the main term of
    the spectrally-normalized margin bound with reference at initialization (Bartlett et al.
    2017; Neyshabur et al. 2018)."""
    _need_init(norms)
    return log_prod_of_spec_over_margin(norms, margin) + jnp.log(jnp.sum(norms.dist_fro / norms.spec))


def log_spec_orig_main(norms: LayerNorms, margin: jax.Array) -> jax.Array:
    """``log (Π_i ‖W_i‖₂² / γ² · Σ_i ‖W_i‖_F² / ‖W_i‖₂²)``, eq. (30) (reference at the origin)."""
    return log_prod_of_spec_over_margin(norms, margin) + jnp.log(fro_over_spec(norms))


def dist_spec_init(norms: LayerNorms) -> jax.Array:
    """``Σ_i ‖W_i − W_i^0‖₂²``, eq. (41): distance from initialization in spectral norm."""
    _need_init(norms)
    return jnp.sum(norms.dist_spec)


def log_prod_of_fro(norms: LayerNorms) -> jax.Array:
    """``log Π_i ‖W_i‖_F²``, eq. (37)."""
    return jnp.sum(jnp.log(norms.fro))


def log_prod_of_fro_over_margin(norms: LayerNorms, margin: jax.Array) -> jax.Array:
    """``log (Π_i ‖W_i‖_F² / γ²)``, eq. (36)."""
    return log_prod_of_fro(norms) - jnp.log(margin**2)


def log_sum_of_fro(norms: LayerNorms) -> jax.Array:
    """``log (d · (Π_i ‖W_i‖_F²)^{1/d})``, eq. (39) (rebalanced sum, as eq. (35))."""
    return _rebalanced(log_prod_of_fro(norms), norms.fro)


def log_sum_of_fro_over_margin(norms: LayerNorms, margin: jax.Array) -> jax.Array:
    """``log (d · (Π_i ‖W_i‖_F² / γ²)^{1/d})``, eq. (38)."""
    return _rebalanced(log_prod_of_fro_over_margin(norms, margin), norms.fro)


def fro_dist(norms: LayerNorms) -> jax.Array:
    """``Σ_i ‖W_i − W_i^0‖_F²``, eq. (40): distance from initialization over the layer matrices
    (:func:`~dl_course.measures.generalization.norms.distance_from_init` is the same over all parameters)."""
    _need_init(norms)
    return jnp.sum(norms.dist_fro)


def param_norm(norms: LayerNorms) -> jax.Array:
    """``Σ_i ‖W_i‖_F²``, eq. (42): squared Frobenius norm of the layer matrices."""
    return jnp.sum(norms.fro)


def path_norm_sq(
    apply_fn: Callable[[PyTree, jax.Array], jax.Array], params: PyTree, input_shape: tuple
) -> jax.Array:
    """``Σ_k f_{w²}(1)[k]``, eq. (44): the squared ℓ2 path norm ``Σ_paths Π_edges w²``
    (Neyshabur et al. 2015), i.e. the square of :func:`~dl_course.measures.generalization.norms.path_norm`
    (same assumptions: ReLU networks of linear maps, biases and linear pooling)."""
    return path_norm(apply_fn, params, input_shape) ** 2


def path_norm_over_margin(
    apply_fn: Callable[[PyTree, jax.Array], jax.Array], params: PyTree, input_shape: tuple,
    margin: jax.Array,
) -> jax.Array:
    """``Σ_k f_{w²}(1)[k] / γ²``, eq. (43)."""
    return path_norm_sq(apply_fn, params, input_shape) / margin**2


def fisher_rao_norm(
    example_losses_fn: Callable[[PyTree], jax.Array], params: PyTree,
    num_layers: int | None = None,
) -> jax.Array:
    """Fisher–Rao norm (Liang, Poggio, Rakhlin & Stokes 2019, AISTATS, Def. of ``‖θ‖_fr``)
    with the empirical Fisher of the training labels:

        ‖θ‖_fr² = θᵀ Î(θ) θ = (1/m) Σ_i ⟨θ, ∇_θ ℓ(f_θ(x_i), y_i)⟩²,

    the parameters measured in the metric of the (empirical) Fisher information. For a network
    homogeneous of degree ``L+1`` in its parameters (bias-free ReLU, ``L`` hidden layers)
    ``⟨θ, ∇_θ ℓ⟩ = (L+1) ⟨∂ℓ/∂f, f⟩`` (Liang et al., Lemma 2.1). Jiang et al. write the measure
    with an extra factor, ``(d+1)²/m Σ_i ⟨w, ∇_w ℓ_i⟩²``; pass ``num_layers = d`` to include it.
    ``example_losses_fn(params) -> (m,)`` returns per-example losses; all ``m`` directional
    derivatives ``⟨θ, ∇ℓ_i⟩`` come from one forward-mode JVP along ``θ`` itself.
    """
    _, directional = jax.jvp(example_losses_fn, (params,), (params,))
    value = jnp.mean(directional**2)
    return value if num_layers is None else (num_layers + 1) ** 2 * value

