"""Output margins: multiclass margin distributions, norm-normalized margins, and the normalized
margin of homogeneous binary classifiers."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dl_course.measures.generalization.norms import layer_frobenius_norms, layer_spectral_norms, spectral_complexity

PyTree = Any


def multiclass_margins(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example margins ``γ_i = f(x_i)_{y_i} − max_{j ≠ y_i} f(x_i)_j``, shape ``(n,)``.

    Positive iff example ``i`` is classified correctly (ties count as errors); its distribution is
    what Bartlett et al. (2017) plot, after normalization (:func:`normalized_margins`).
    """
    n, c = logits.shape
    correct = jnp.take_along_axis(logits, labels[:, None].astype(jnp.int32), axis=1)[:, 0]
    others = jnp.where(jax.nn.one_hot(labels, c, dtype=bool), -jnp.inf, logits)
    return correct - jnp.max(others, axis=1)


_NORMALIZERS = ("spectral", "frobenius", "spectral_complexity")


def margin_normalizer(
    params: PyTree, kind: str = "spectral", reference: PyTree | None = None
) -> jax.Array:
    """The scale a margin is divided by:

    * ``"spectral"``: ``Π_l ‖W_l‖_2``, the product of layer spectral norms (the Lipschitz constant
      of a network with 1-Lipschitz activations, an upper bound on how far the margin can scale);
    * ``"frobenius"``: ``Π_l ‖W_l‖_F`` (Neyshabur et al. 2015; Golowich et al. 2018);
    * ``"spectral_complexity"``: Bartlett et al.'s (2017) ``R_A`` with reference ``reference``.

    Layer matrices follow :mod:`dl_course.measures.generalization.norms` (conv kernels reshaped).
    """
    if kind == "spectral":
        return jnp.prod(layer_spectral_norms(params))
    if kind == "frobenius":
        return jnp.prod(layer_frobenius_norms(params))
    if kind == "spectral_complexity":
        return spectral_complexity(params, reference)
    raise ValueError(f"unknown margin normalizer {kind!r}; valid: {list(_NORMALIZERS)}")


def normalized_margins(
    logits: jax.Array,
    labels: jax.Array,
    params: PyTree,
    kind: str = "spectral",
    *,
    x: jax.Array | None = None,
    reference: PyTree | None = None,
) -> jax.Array:
    """Margins divided by :func:`margin_normalizer` and, if the inputs ``x`` are given, by
    ``‖X‖_F / n`` as in Bartlett et al. (2017, Fig. 1): ``γ_i n / (R ‖X‖_F)``. Comparable across
    networks of different scale; heavier right tails go with better generalization."""
    scale = margin_normalizer(params, kind, reference)
    if x is not None:
        scale = scale * jnp.linalg.norm(x.reshape(x.shape[0], -1)) / x.shape[0]
    return multiclass_margins(logits, labels) / scale


def homogeneous_normalized_margin(
    outputs: jax.Array,
    labels: jax.Array,
    params: PyTree,
    degree: float = 1.0,
    ord: Any = 2,
) -> jax.Array:
    """``min_i y_i f(x_i) / ‖θ‖^L`` for a binary classifier ``f`` that is ``L``-homogeneous in
    its parameters (``degree``; ``L = 1`` for a linear model ``f(x) = wᵀx``, ``L =`` depth for a
    bias-free ReLU network).

    Gradient descent on the logistic loss maximizes this in the limit for ``ord=2`` (Soudry et al.
    2018 for linear models; Lyu & Li 2020 for homogeneous networks); steepest descent w.r.t. a
    norm maximizes the margin for that norm (Gunasekar et al. 2018; ``ord=np.inf`` for sign
    descent). ``outputs`` are the scalar scores ``(n,)`` (or ``(n, 1)``); ``labels`` are in
    ``{−1, +1}`` or ``{0, 1}`` (``≤ 0`` maps to ``−1``); ``ord`` is that of
    ``jnp.linalg.norm`` applied to the flattened parameters.
    """
    y = jnp.where(labels > 0, 1.0, -1.0).astype(outputs.dtype)
    norm = jnp.linalg.norm(ravel_pytree(params)[0], ord=ord)
    return jnp.min(y * outputs.reshape(-1)) / norm**degree
