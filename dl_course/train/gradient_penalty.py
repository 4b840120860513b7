"""SGD's implicit regularizer made explicit: the mean squared gradient norm over sub-batches.

Smith, Dherin, Barrett & De (2021, ICLR), "On the Origin of Implicit Regularization in Stochastic
Gradient Descent": with random shuffling, the mean iterate of SGD with step ``η`` over an epoch of
``m`` minibatches follows the gradient flow of

    L̃_SGD(θ) = L(θ) + (η/4m) Σ_k ‖∇L̂_k(θ)‖²,

``L̂_k`` the mean loss of minibatch ``k`` (their eq. 3). Their Section 5 adds this term explicitly
to large-batch training, evaluating it on sub-batches of the small batch size inside each large
batch, so that a large batch at a small learning rate recovers the test accuracy of small batches.
:func:`sub_batch_gradient_penalty` is that term's sum; the engine adds
``(λ/4) · sub_batch_gradient_penalty`` to the training objective for the grid key
``sgd_regularizer`` = λ (``dl_course.train.program.train_step``), with the sub-batch size
``config.regularizer_batch_size``. Its gradient, ``(λ/2m) Σ_k ∇²L̂_k ∇L̂_k``, costs one
Hessian-vector product per sub-batch (double backpropagation, vectorized over the sub-batches).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax


def split_batch(batch, sub_batch_size: int):
    """``batch`` (a pytree of arrays with a leading example axis) as ``m = n / sub_batch_size``
    stacked sub-batches: every leaf reshaped to ``[m, sub_batch_size, ...]`` (in order: sub-batch
    ``k`` holds examples ``k·b … (k+1)·b − 1``). ``sub_batch_size`` must divide the batch size."""
    n = jax.tree.leaves(batch)[0].shape[0]
    if sub_batch_size <= 0 or n % sub_batch_size:
        raise ValueError(f"sub_batch_size {sub_batch_size} must be a positive divisor of the batch size {n}")
    return jax.tree.map(lambda v: v.reshape((n // sub_batch_size, sub_batch_size) + v.shape[1:]), batch)


def sub_batch_gradient_penalty(batch_loss_fn: Callable, params, batch, sub_batch_size: int):
    """``(1/m) Σ_k ‖∇_θ L̂_k(θ)‖²`` over the ``m`` consecutive sub-batches of ``sub_batch_size``
    examples of ``batch`` (``L̂_k = batch_loss_fn(params, sub_batch_k)``, a mean over its examples).

    ``(η/4)`` times this is the regularizer of Smith et al. (2021) for SGD with step ``η`` and
    batch size ``sub_batch_size`` (module docstring); with ``sub_batch_size`` = the whole batch it
    is ``‖∇L̂‖²``, the implicit gradient regularizer of GD (Barrett & Dherin 2021). The gradients
    of the sub-batches are computed in one ``vmap``; differentiable (its gradient is
    ``(2/m) Σ_k ∇²L̂_k ∇L̂_k``).
    """
    subs = split_batch(batch, sub_batch_size)
    grads = jax.vmap(jax.grad(batch_loss_fn), in_axes=(None, 0))(params, subs)
    return jnp.mean(jax.vmap(lambda g: optax.tree.norm(g, squared=True))(grads))
