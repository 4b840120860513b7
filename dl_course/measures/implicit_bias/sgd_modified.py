"""SGD's modified loss and the mean SGD iterate over all minibatch orders (Smith et al. 2021).

Smith, Dherin, Barrett & De (2021, ICLR), "On the Origin of Implicit Regularization in Stochastic
Gradient Descent", Sec. 2: let the training set be split into ``m`` minibatches of equal size,
``L̂_k`` the mean loss of minibatch ``k`` and ``L = (1/m) Σ_k L̂_k`` the full-batch loss. One
epoch of SGD with random shuffling takes the steps ``θ_{i+1} = θ_i − η ∇L̂_{π(i)}(θ_i)`` in a
uniformly random order ``π``. Averaged over the ``m!`` orders, the iterate after the epoch equals,
up to ``O(η³)``, the gradient flow over time ``mη`` of

    L̃_SGD(θ) = L(θ) + (η/4m) Σ_k ‖∇L̂_k(θ)‖²
             = L + (η/4) ‖∇L‖²  +  (η/4m) Σ_k ‖∇L̂_k − ∇L‖²,

the second line because ``∇L`` is the mean of the ``∇L̂_k``: GD's implicit gradient regularizer
(Barrett & Dherin 2021) plus a minibatch-variance term, ``∝ η/B`` for small batches ``B``.
Derivation (their eq. 9–13): to second order the epoch gives
``θ_m = θ_0 − mη∇L + η² Σ_{j<i} ∇²L̂_{π(i)} ∇L̂_{π(j)}``; the mean over orders of the double sum is
``½(m² ∇²L ∇L − Σ_k ∇²L̂_k ∇L̂_k)``, which is what the flow of ``L̃_SGD`` gives over time ``mη``.

:func:`sgd_modified_loss_terms` splits the modified loss into its parts; :func:`mean_sgd_epoch`
computes the exact mean over all ``m!`` orders (vmapped over the orders) for small ``m``. Both
take ``loss_fn(params, batch) -> scalar`` (the mean loss of one minibatch) and ``batches``, a
pytree whose leaves stack the ``m`` minibatches along a leading axis; both work under ``jax.vmap``
over runs (params, learning rates).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


class SGDModifiedLoss(NamedTuple):
    """The parts of ``L̃_SGD`` at one point (scalars; ``total = loss + igr + variance``).

    Attributes:
      loss: ``L = (1/m) Σ_k L̂_k``.
      igr: ``(η/4) ‖∇L‖²``, GD's implicit gradient regularizer.
      variance: ``(η/4m) Σ_k ‖∇L̂_k − ∇L‖²``, the minibatch-variance term specific to SGD.
      total: ``L + (η/4m) Σ_k ‖∇L̂_k‖²``.
    """

    loss: jax.Array
    igr: jax.Array
    variance: jax.Array
    total: jax.Array


def minibatch_losses_and_grads(loss_fn: Callable, params, batches):
    """``(L̂_k, ∇L̂_k)`` for every minibatch ``k`` of the stacked ``batches`` (leading axis ``m``)."""
    return jax.vmap(jax.value_and_grad(loss_fn), in_axes=(None, 0))(params, batches)


def sgd_modified_loss_terms(loss_fn: Callable, params, batches, learning_rate) -> SGDModifiedLoss:
    """``L̃_SGD`` of Smith et al. (2021, eq. 3) and its split into GD's implicit regularizer and the
    minibatch-variance term (module docstring). ``learning_rate`` may be traced (vmapped over)."""
    losses, grads = minibatch_losses_and_grads(loss_fn, params, batches)
    mean_grad = jax.tree.map(lambda g: jnp.mean(g, 0), grads)
    sq = lambda t: optax.tree.norm(t, squared=True)  # noqa: E731
    dev = jax.vmap(lambda g: sq(jax.tree.map(jnp.subtract, g, mean_grad)))(grads)
    loss = jnp.mean(losses)
    igr = 0.25 * learning_rate * sq(mean_grad)
    variance = 0.25 * learning_rate * jnp.mean(dev)
    return SGDModifiedLoss(loss=loss, igr=igr, variance=variance, total=loss + igr + variance)


def sgd_modified_loss(loss_fn: Callable, params, batches, learning_rate):
    """``L̃_SGD(θ) = L(θ) + (η/4m) Σ_k ‖∇L̂_k(θ)‖²`` (Smith et al. 2021, eq. 3): the loss whose
    gradient flow the mean SGD iterate follows to ``O(η³)`` per epoch. Computed directly from the
    minibatch gradients (not from the split, so the identity of :func:`sgd_modified_loss_terms` can
    be tested); differentiable, vmappable."""
    losses, grads = minibatch_losses_and_grads(loss_fn, params, batches)
    sq = jax.vmap(lambda g: optax.tree.norm(g, squared=True))(grads)
    return jnp.mean(losses) + 0.25 * learning_rate * jnp.mean(sq)


def all_orders(m: int) -> np.ndarray:
    """Every permutation of ``range(m)`` as an int32 array ``[m!, m]`` (lexicographic)."""
    if not 1 <= m <= 8:
        raise ValueError(f"all_orders enumerates m! orders; m must be in [1, 8], got {m}")
    return np.asarray(list(itertools.permutations(range(m))), np.int32).reshape(math.factorial(m), m)


def sgd_epoch(loss_fn: Callable, params, batches, learning_rate, order):
    """One epoch of plain SGD, ``θ ← θ − η ∇L̂_{order[i]}(θ)`` for ``i = 0 … m−1`` (a ``lax.scan``)."""
    grad = jax.grad(loss_fn)

    def step(p, k):
        batch = jax.tree.map(lambda b: b[k], batches)
        return jax.tree.map(lambda a, g: a - learning_rate * g, p, grad(p, batch)), None

    return jax.lax.scan(step, params, jnp.asarray(order))[0]


def mean_sgd_epoch(loss_fn: Callable, params, batches, learning_rate, orders=None):
    """The mean over ``orders`` (default: all ``m!`` of :func:`all_orders`, the exact expectation
    under random shuffling) of the iterate after one SGD epoch from ``params``; the epochs of all
    orders run in one ``vmap``."""
    if orders is None:
        orders = all_orders(jax.tree.leaves(batches)[0].shape[0])
    ends = jax.vmap(lambda order: sgd_epoch(loss_fn, params, batches, learning_rate, order))(jnp.asarray(orders))
    return jax.tree.map(lambda e: jnp.mean(e, 0), ends)
