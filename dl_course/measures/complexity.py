"""Norm- and margin-based complexity measures of Jiang et al. (2020), "Fantastic Generalization
Measures and Where to Find Them" (ICLR), Appendix C.1–C.2.

Equation numbers ``(N)`` are those of the paper's appendix (arXiv:1912.02178). Notation: ``d``
layer matrices ``W_1, …, W_d`` (the leaves with ``ndim ≥ 2``, conv kernels reshaped, see
:mod:`dl_course.measures.norms`; biases and normalization scales are not layers), ``W_i^0`` the
same layers at initialization, ``γ`` the output margin (:func:`output_margin`), ``ω`` the number
of parameters. Products of norms are reported as logarithms, as in the paper, so that they stay
finite in float32 (Kendall's τ is invariant under the monotone ``log``). Every measure is
oriented as a *complexity*: larger values predict a larger generalization gap. All functions are
pure jnp (SVDs through :mod:`dl_course.linalg`) and work under ``jax.vmap`` over a run axis.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from dl_course import linalg
from dl_course.measures.margins import multiclass_margins
from dl_course.measures.norms import layer_matrices, path_norm

PyTree = Any


def _layers(params: PyTree) -> list[jax.Array]:
    mats = layer_matrices(params)
    if not mats:
        raise ValueError("params has no leaf with ndim >= 2 (no weight matrices)")
    return mats


def _sq_spec(mats: list[jax.Array]) -> jax.Array:
    return jnp.stack([linalg.svd(w, compute_uv=False)[0] ** 2 for w in mats])


def _sq_fro(mats: list[jax.Array]) -> jax.Array:
    return jnp.stack([jnp.sum(w**2) for w in mats])


def _diffs(params: PyTree, init_params: PyTree) -> list[jax.Array]:
    return [w - w0 for w, w0 in zip(_layers(params), _layers(init_params))]


def num_parameters(params: PyTree) -> int:
    """``ω``, the number of parameters (every leaf, biases included), Jiang et al. eq. (20)
    (the VC-dimension proxy). A Python int: it is static under ``jit``/``vmap``."""
    return int(sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))


def output_margin(logits: jax.Array, labels: jax.Array, quantile: float = 0.1) -> jax.Array:
    """``γ``: the ``quantile``-quantile (Jiang et al.: the 10th percentile) of the training margins
    ``f(x_i)_{y_i} − max_{j≠y_i} f(x_i)_j`` (:func:`~dl_course.measures.margins.multiclass_margins`),
    linearly interpolated (``jnp.quantile``). Jiang et al. take a percentile rather than the
    minimum so that the margin is robust to a few outliers (App. C.1)."""
    return jnp.quantile(multiclass_margins(logits, labels), quantile)


def inverse_margin(margin: jax.Array) -> jax.Array:
    """``1 / γ²``, Jiang et al. eq. (22)."""
    return 1.0 / margin**2


def log_prod_of_spec(params: PyTree) -> jax.Array:
    """``log Π_i ‖W_i‖₂²``, eq. (32) (spectral norm = largest singular value, exact SVD)."""
    return jnp.sum(jnp.log(_sq_spec(_layers(params))))


def log_prod_of_spec_over_margin(params: PyTree, margin: jax.Array) -> jax.Array:
    """``log (Π_i ‖W_i‖₂² / γ²)``, eq. (31)."""
    return log_prod_of_spec(params) - jnp.log(margin**2)


def log_sum_of_spec(params: PyTree) -> jax.Array:
    """``log (d · (Π_i ‖W_i‖₂²)^{1/d})``, eq. (35): the sum of squared spectral norms after the
    rebalancing ``W_i → c_i W_i`` (``Π c_i = 1``) that minimizes it, which a ReLU network's
    function does not see."""
    d = len(_layers(params))
    return math.log(d) + log_prod_of_spec(params) / d


def log_sum_of_spec_over_margin(params: PyTree, margin: jax.Array) -> jax.Array:
    """``log (d · (Π_i ‖W_i‖₂² / γ²)^{1/d})``, eq. (34)."""
    d = len(_layers(params))
    return math.log(d) + log_prod_of_spec_over_margin(params, margin) / d


def fro_over_spec(params: PyTree) -> jax.Array:
    """``Σ_i ‖W_i‖_F² / ‖W_i‖₂²``, eq. (33): the sum of the layers' stable ranks."""
    mats = _layers(params)
    return jnp.sum(_sq_fro(mats) / _sq_spec(mats))


def log_spec_init_main(params: PyTree, init_params: PyTree, margin: jax.Array) -> jax.Array:
    """``log (Π_i ‖W_i‖₂² / γ² · Σ_i ‖W_i − W_i^0‖_F² / ‖W_i‖₂²)``, eq. (29): the main term of
    the spectrally-normalized margin bound with reference at initialization (Bartlett et al.
    2017; Neyshabur et al. 2018)."""
    ratio = jnp.sum(_sq_fro(_diffs(params, init_params)) / _sq_spec(_layers(params)))
    return log_prod_of_spec_over_margin(params, margin) + jnp.log(ratio)


def log_spec_orig_main(params: PyTree, margin: jax.Array) -> jax.Array:
    """``log (Π_i ‖W_i‖₂² / γ² · Σ_i ‖W_i‖_F² / ‖W_i‖₂²)``, eq. (30) (reference at the origin)."""
    return log_prod_of_spec_over_margin(params, margin) + jnp.log(fro_over_spec(params))


def dist_spec_init(params: PyTree, init_params: PyTree) -> jax.Array:
    """``Σ_i ‖W_i − W_i^0‖₂²``, eq. (41): distance from initialization in spectral norm."""
    return jnp.sum(_sq_spec(_diffs(params, init_params)))


def log_prod_of_fro(params: PyTree) -> jax.Array:
    """``log Π_i ‖W_i‖_F²``, eq. (37)."""
    return jnp.sum(jnp.log(_sq_fro(_layers(params))))


def log_prod_of_fro_over_margin(params: PyTree, margin: jax.Array) -> jax.Array:
    """``log (Π_i ‖W_i‖_F² / γ²)``, eq. (36)."""
    return log_prod_of_fro(params) - jnp.log(margin**2)


def log_sum_of_fro(params: PyTree) -> jax.Array:
    """``log (d · (Π_i ‖W_i‖_F²)^{1/d})``, eq. (39) (rebalanced sum, as eq. (35))."""
    d = len(_layers(params))
    return math.log(d) + log_prod_of_fro(params) / d


def log_sum_of_fro_over_margin(params: PyTree, margin: jax.Array) -> jax.Array:
    """``log (d · (Π_i ‖W_i‖_F² / γ²)^{1/d})``, eq. (38)."""
    d = len(_layers(params))
    return math.log(d) + log_prod_of_fro_over_margin(params, margin) / d


def fro_dist(params: PyTree, init_params: PyTree) -> jax.Array:
    """``Σ_i ‖W_i − W_i^0‖_F²``, eq. (40): distance from initialization over the layer matrices
    (:func:`~dl_course.measures.norms.distance_from_init` is the same over all parameters)."""
    return jnp.sum(_sq_fro(_diffs(params, init_params)))


def param_norm(params: PyTree) -> jax.Array:
    """``Σ_i ‖W_i‖_F²``, eq. (42): squared Frobenius norm of the layer matrices."""
    return jnp.sum(_sq_fro(_layers(params)))


def path_norm_sq(
    apply_fn: Callable[[PyTree, jax.Array], jax.Array], params: PyTree, input_shape: tuple
) -> jax.Array:
    """``Σ_k f_{w²}(1)[k]``, eq. (44): the squared ℓ2 path norm ``Σ_paths Π_edges w²``
    (Neyshabur et al. 2015), i.e. the square of :func:`~dl_course.measures.norms.path_norm`
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
    num_layers: Optional[int] = None,
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

