"""Parameter norms used as capacity / generalization measures, model-agnostic over pytrees.

Layer convention: every parameter leaf with ``ndim ≥ 2`` is a layer's weight and is treated as
the matrix ``W.reshape(-1, W.shape[-1])`` of shape ``(fan_in, fan_out)`` (flax's kernel layout:
a dense kernel is ``(in, out)``, a conv kernel ``(kh, kw, c_in, c_out)`` becomes
``(kh·kw·c_in, c_out)``). For a convolution, the spectral norm of this matrix is *not* the operator
norm of the convolution (which depends on the input size; Sedghi et al. 2019) — it is the common
proxy (e.g. Jiang et al. 2020, "Fantastic generalization measures"). Leaves with ``ndim ≤ 1``
(biases, normalization scales) are not layers. Leaves are taken in ``jax.tree_util`` order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dl_course import linalg

PyTree = Any


def layer_matrices(params: PyTree) -> list[jax.Array]:
    """The weight matrices ``(fan_in, fan_out)`` of all leaves with ``ndim ≥ 2`` (module doc)."""
    return [w.reshape(-1, w.shape[-1]) for w in jax.tree_util.tree_leaves(params) if w.ndim >= 2]


def _matrices(params: PyTree) -> list[jax.Array]:
    mats = layer_matrices(params)
    if not mats:
        raise ValueError("params has no leaf with ndim >= 2 (no weight matrices)")
    return mats


def layer_frobenius_norms(params: PyTree) -> jax.Array:
    """``‖W_l‖_F`` for every layer matrix, shape ``(L,)``."""
    return jnp.stack([jnp.linalg.norm(w) for w in _matrices(params)])


def layer_spectral_norms(params: PyTree) -> jax.Array:
    """``‖W_l‖_2`` (largest singular value, exact SVD) for every layer matrix, shape ``(L,)``."""
    return jnp.stack([linalg.svd(w, compute_uv=False)[0] for w in _matrices(params)])


def frobenius_norm(params: PyTree) -> jax.Array:
    """``‖θ‖_2`` over all parameters (biases included)."""
    return jnp.linalg.norm(ravel_pytree(params)[0])


def spectral_complexity(params: PyTree, reference: PyTree | None = None) -> jax.Array:
    """Bartlett, Foster & Telgarsky (2017) spectral complexity (1-Lipschitz activations):

        R = (Π_l ‖W_l‖_2) · ( Σ_l ‖W_l − M_l‖_{2,1}^{2/3} / ‖W_l‖_2^{2/3} )^{3/2},

    with ``‖·‖_{2,1}`` the sum of the ℓ2 norms of the columns of ``W`` (``(in, out)`` layout: the
    incoming weights of each unit; Bartlett et al.'s ``‖Aᵀ‖_{2,1}``) and reference matrices ``M``
    (``reference`` params, e.g. the initialization; zero if ``None``).
    """
    mats = _matrices(params)
    refs = _matrices(reference) if reference is not None else [jnp.zeros_like(w) for w in mats]
    spec = jnp.stack([linalg.svd(w, compute_uv=False)[0] for w in mats])
    l21 = jnp.stack([jnp.sum(jnp.linalg.norm(w - m, axis=0)) for w, m in zip(mats, refs)])
    return jnp.prod(spec) * jnp.sum((l21 / spec) ** (2.0 / 3.0)) ** 1.5


def path_norm(
    apply_fn: Callable[[PyTree, jax.Array], jax.Array], params: PyTree, input_shape: tuple
) -> jax.Array:
    """ℓ2 path norm ``√(Σ_paths Π_{edges} w²)`` (Neyshabur, Salakhutdinov & Srebro 2015), computed
    as ``√(Σ_outputs f_{θ²}(1))``: the network with every parameter squared, on an all-ones
    input (as in Jiang et al. 2020). Exact for ReLU networks built from linear maps, biases and
    linear pooling (all pre-activations are then ≥ 0 and ReLU is the identity); not meaningful
    with normalization layers. ``apply_fn(params, x)`` maps a batch to outputs; ``input_shape``
    excludes the batch axis.
    """
    squared = jax.tree_util.tree_map(jnp.square, params)
    out = apply_fn(squared, jnp.ones((1,) + tuple(input_shape), ravel_pytree(params)[0].dtype))
    return jnp.sqrt(jnp.sum(out))


def distance_from_init(params: PyTree, init_params: PyTree, relative: bool = False) -> jax.Array:
    """``‖θ − θ_0‖_2`` (or ``/ ‖θ_0‖_2`` if ``relative``), a measure of how far training moved the
    weights (Nagarajan & Kolter 2019; lazy vs rich regimes, Chizat et al. 2019)."""
    diff = ravel_pytree(params)[0] - ravel_pytree(init_params)[0]
    dist = jnp.linalg.norm(diff)
    return dist / frobenius_norm(init_params) if relative else dist


def generalization_gap(
    train_value: jax.Array, test_value: jax.Array, higher_is_better: bool = False
) -> jax.Array:
    """Generalization gap ``test − train`` for a loss (``higher_is_better=False``) or
    ``train − test`` for an accuracy, so that a positive gap means the model does worse on the
    test set (Zhang et al. 2017)."""
    return train_value - test_value if higher_is_better else test_value - train_value
