"""Curvature-vector products: Hessian, Gauss–Newton and empirical Fisher, on one batch or a dataset.

All operators act on parameter pytrees and never form a matrix: a product costs a small constant
times one gradient evaluation. Conventions (used throughout ``dl_course.measures``):

* ``loss_fn(params) -> scalar`` closes over its data; the loss is a *mean* over examples.
* ``v`` is a pytree with the structure of ``params``; the result has the same structure.
* Dataset-level operators take ``batch_loss_fn(params, batch)``-style functions and a ``data``
  pytree whose leaves have a leading example axis; they return the example-weighted mean of the
  per-batch operators, which equals the full-batch operator exactly (up to float rounding) for
  *every* batch size, including ones that do not divide the dataset size.

References: Pearlmutter (1994) for fast Hessian-vector products; Schraudolph (2002) and Martens
(2010, 2020, "New insights and perspectives on the natural gradient method") for the generalized
Gauss–Newton matrix and the (empirical) Fisher; Kunstner et al. (2019) on the empirical Fisher.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


def hvp(loss_fn: Callable[[PyTree], jax.Array], params: PyTree, v: PyTree) -> PyTree:
    """Hessian-vector product ``H v`` with ``H = ∇²L(θ)``, by forward-over-reverse differentiation.

    ``H v = d/dt ∇L(θ + t v) |_{t=0}`` is the JVP of the gradient (Pearlmutter 1994). Forward over
    reverse costs about 1.4–2× one gradient (see ``benchmarks/bench_curvature.py``) and needs no
    extra memory beyond the gradient's.
    """
    return jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]


def linearized_hvp(loss_fn: Callable[[PyTree], jax.Array], params: PyTree) -> Callable[[PyTree], PyTree]:
    """``v -> H v`` at a fixed ``θ`` with the gradient linearized once: ``jax.linearize(∇L, θ)``.

    ``H v = ∂(∇L)(θ)[v]`` is the same JVP as in :func:`hvp`, but the forward and backward passes
    at ``θ`` (the primal part of forward-over-reverse) run once, when this function is called;
    each product then evaluates only the tangent (linear) part, about one gradient's cost instead
    of a full forward-over-reverse product (Pearlmutter 1994; JAX's ``linearize`` = JVP + partial
    evaluation, Frostig et al. 2021, "Decomposing reverse-mode automatic differentiation"). For
    ``k`` products at one point (Lanczos, Hutchinson, SLQ) this saves ``k − 1`` primal passes by
    construction. Measured (``benchmarks/bench_hvp.py``, the edge-of-stability MLP, CPU): inside
    a jitted ``lax.scan`` XLA already hoists the loop-invariant primal part of :func:`hvp` out of
    the loop, so both methods take the same time (ratios 0.96–1.06, one run or vmapped over 16)
    and the same temporary memory; the tangent part alone costs about 2 gradients (each layer's
    products are differentiated once more).

    Memory trade-off: the returned function holds the *residuals* of the linearization — the
    forward activations and the backward pass's intermediates at ``θ`` (for an MLP on ``n``
    examples about ``n × Σ widths`` values, a small multiple of what one gradient stores) — for as
    long as it is used. When ``loss_fn`` scans over data batches (e.g. through
    :func:`dataset_mean`) the residuals of *every* batch are stored at once, which forward-over-
    reverse avoids: use :func:`hvp` (``method="forward_over_reverse"``) for losses whose
    activations do not fit in memory at once.
    """
    return jax.linearize(jax.grad(loss_fn), params)[1]


def _forward_over_reverse(loss_fn, params):
    return lambda v: hvp(loss_fn, params, v)


#: Constructors ``(loss_fn, params) -> (v -> H v)`` of the Hessian operator at ``params``.
HVP_METHODS = {"linearize": linearized_hvp, "forward_over_reverse": _forward_over_reverse}
#: Default of every Hessian measure's ``hvp_method``. ``benchmarks/bench_hvp.py`` measured no
#: difference inside jitted loops (XLA hoists the invariant primal of forward-over-reverse), so
#: the default stays the method that needs no explicit residuals; ``"linearize"`` guarantees the
#: hoisting where a compiler would not (e.g. products applied from Python, outside one program).
DEFAULT_HVP_METHOD = "forward_over_reverse"


def hessian_vector_operator(
    loss_fn: Callable[[PyTree], jax.Array], params: PyTree, method: str = DEFAULT_HVP_METHOD
) -> Callable[[PyTree], PyTree]:
    """The operator ``v -> ∇²L(θ) v`` by ``method`` in :data:`HVP_METHODS`: ``"linearize"``
    (:func:`linearized_hvp`: the gradient linearized once, each product evaluates the tangent part
    only; holds the linearization's residuals) or ``"forward_over_reverse"`` (:func:`hvp` per
    product; inside a jitted loop XLA hoists its primal part, outside it is recomputed)."""
    if method not in HVP_METHODS:
        raise ValueError(f"unknown hvp method {method!r}; valid: {sorted(HVP_METHODS)}")
    return HVP_METHODS[method](loss_fn, params)


def ggn_vp(
    output_fn: Callable[[PyTree], jax.Array],
    output_loss_fn: Callable[[jax.Array], jax.Array],
    params: PyTree,
    v: PyTree,
) -> PyTree:
    """Generalized Gauss–Newton product ``G v = Jᵀ H_z J v`` for ``L(θ) = ℓ(f(θ))``.

    ``J = ∂f/∂θ`` is the Jacobian of the network outputs ``z = f(θ)`` (``output_fn``, all examples
    stacked) and ``H_z = ∇²_z ℓ(z)`` the Hessian of the loss with respect to the outputs
    (``output_loss_fn``; it closes over the targets). ``G`` drops the term ``Σ_k (∂ℓ/∂z_k) ∇²z_k``
    from ``∇²L`` and is positive semi-definite whenever ``ℓ`` is convex in ``z`` (Schraudolph 2002;
    Martens 2020, §8). Cost: one JVP, one HVP in output space, one VJP.
    """
    z, jv = jax.jvp(output_fn, (params,), (v,))
    hjv = hvp(output_loss_fn, z, jv)
    _, vjp_fn = jax.vjp(output_fn, params)
    return vjp_fn(hjv)[0]


def cross_entropy_ggn_vp(
    logits_fn: Callable[[PyTree], jax.Array], params: PyTree, v: PyTree
) -> PyTree:
    """GGN product for the mean softmax cross-entropy over ``n`` examples, in closed form.

    For logits ``z_i`` with probabilities ``p_i = softmax(z_i)``, the output Hessian of
    ``(1/n) Σ_i −log p_{i, y_i}`` is block diagonal with blocks ``(diag p_i − p_i p_iᵀ)/n``,
    independent of the labels, so ``G v = Jᵀ [ (p ⊙ u − p (pᵀu)) / n ]`` with ``u = J v``. Here
    ``G`` equals the true Fisher of the model's predictive distribution (Martens 2020, §9.2).
    ``logits_fn(params)`` returns logits of shape ``[n, num_classes]``.
    """
    logits, u = jax.jvp(logits_fn, (params,), (v,))
    p = jax.nn.softmax(logits, axis=-1)
    h_u = (p * u - p * jnp.sum(p * u, axis=-1, keepdims=True)) / logits.shape[0]
    _, vjp_fn = jax.vjp(logits_fn, params)
    return vjp_fn(h_u.astype(logits.dtype))[0]


def mse_ggn_vp(output_fn: Callable[[PyTree], jax.Array], params: PyTree, v: PyTree) -> PyTree:
    """GGN product for the squared error ``L = (1/n) Σ_i ½‖f_i − y_i‖²`` (the convention of
    ``dl_course.train.losses.mse``), where ``output_fn(params)`` has a leading example axis ``n``.

    The output Hessian is ``I/n``, so ``G v = Jᵀ J v / n``: the Gauss–Newton matrix, independent
    of the targets. For another scaling use :func:`ggn_vp` with the loss written out.
    """
    out, jv = jax.jvp(output_fn, (params,), (v,))
    _, vjp_fn = jax.vjp(output_fn, params)
    return vjp_fn(jv / out.shape[0])[0]


def empirical_fisher_vp(
    example_losses_fn: Callable[[PyTree], jax.Array], params: PyTree, v: PyTree
) -> PyTree:
    """Empirical Fisher product ``F v = (1/n) Σ_i g_i (g_iᵀ v)`` with ``g_i = ∇ℓ_i(θ)``.

    ``example_losses_fn(params)`` returns the vector ``[ℓ_1, …, ℓ_n]`` of per-example losses.
    Computed without per-example gradients as ``Jᵀ (J v) / n`` with ``J = ∂ℓ/∂θ`` (one JVP, one
    VJP). The empirical Fisher is *not* the Fisher in general (Kunstner et al. 2019); it is the
    uncentered covariance of per-example gradients.
    """
    losses, jv = jax.jvp(example_losses_fn, (params,), (v,))
    _, vjp_fn = jax.vjp(example_losses_fn, params)
    return vjp_fn(jv / losses.shape[0])[0]


# ------------------------------------------------------------------------------------------------
# Dataset-level operators: example-weighted means of per-batch operators.


def dataset_mean(fn: Callable[[PyTree], PyTree], data: PyTree, batch_size: int) -> PyTree:
    """``(1/n) Σ_b n_b · fn(batch_b)``: a per-batch *mean* turned into the dataset mean.

    ``data`` is a pytree whose leaves share a leading axis of ``n`` examples, taken in order. The
    ``n // batch_size`` full batches are folded with ``lax.scan``; a final smaller batch (if
    ``batch_size`` does not divide ``n``) is evaluated once more with its own (static) shape and
    weight ``n_rem / n``. If ``fn(batch)`` is the batch mean of a per-example quantity, the result
    is the dataset mean for every ``batch_size`` (only float summation order changes).
    """
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    batch_size = min(batch_size, n)
    num_full, rem = divmod(n, batch_size)

    full = jax.tree_util.tree_map(
        lambda x: x[: num_full * batch_size].reshape((num_full, batch_size) + x.shape[1:]), data
    )

    def body(acc, batch):
        out = fn(batch)
        return jax.tree_util.tree_map(lambda a, o: a + o * (batch_size / n), acc, out), None

    first = jax.tree_util.tree_map(lambda x: x[0], full)
    zeros = jax.tree_util.tree_map(
        lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, first)
    )
    total, _ = jax.lax.scan(body, zeros, full)
    if rem:
        tail = jax.tree_util.tree_map(lambda x: x[num_full * batch_size :], data)
        total = jax.tree_util.tree_map(lambda a, o: a + o * (rem / n), total, fn(tail))
    return total


def dataset_hvp(
    batch_loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    v: PyTree,
    data: PyTree,
    batch_size: int,
) -> PyTree:
    """Full-dataset Hessian product ``∇²L_D(θ) v``, accumulated over batches (``batch_loss_fn``
    is the mean loss of a batch). Independent of ``batch_size`` (see :func:`dataset_mean`)."""
    return dataset_mean(lambda b: hvp(lambda p: batch_loss_fn(p, b), params, v), data, batch_size)


def dataset_ggn_vp(
    apply_fn: Callable[[PyTree, jax.Array], jax.Array],
    params: PyTree,
    v: PyTree,
    data: PyTree,
    batch_size: int,
    loss: str = "cross_entropy",
) -> PyTree:
    """Full-dataset GGN product for ``loss`` in ``{"cross_entropy", "mse"}``, over batches.

    ``apply_fn(params, x) -> outputs`` and ``data`` is a dict with ``"x"`` (targets are not
    needed: both output Hessians are label-free). For ``"mse"`` the convention of
    :func:`mse_ggn_vp` applies (``½‖f − y‖²`` per example, mean over examples).
    """
    per_batch = {"cross_entropy": cross_entropy_ggn_vp, "mse": mse_ggn_vp}
    if loss not in per_batch:
        raise ValueError(f"unknown loss {loss!r}; valid: {sorted(per_batch)}")
    op = per_batch[loss]
    return dataset_mean(lambda b: op(lambda p: apply_fn(p, b["x"]), params, v), data, batch_size)


def dataset_fisher_vp(
    batch_example_losses_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    v: PyTree,
    data: PyTree,
    batch_size: int,
) -> PyTree:
    """Full-dataset empirical Fisher product; ``batch_example_losses_fn(params, batch)`` returns
    the per-example losses of the batch. Independent of ``batch_size``."""
    return dataset_mean(
        lambda b: empirical_fisher_vp(lambda p: batch_example_losses_fn(p, b), params, v),
        data,
        batch_size,
    )
