"""Order of accuracy of the modified flows for the mean SGD iterate (Smith et al. 2021).

One epoch of SGD with step ``η`` over ``m`` minibatches, averaged over all ``m!`` orders
(:func:`dl_course.measures.implicit_bias.sgd_modified.mean_sgd_epoch`), is compared with three flows over the same
time ``T = mη`` from the same start:

* the gradient flow of ``L``;
* the flow of GD's modified loss ``L̃_GD = L + (η/4)‖∇L‖²`` (Barrett & Dherin 2021);
* the flow of SGD's modified loss ``L̃_SGD = L̃_GD + (η/4m) Σ_k ‖∇L̂_k − ∇L‖²`` (Smith et al. 2021).

Predicted orders after one epoch (fixed ``m``, ``η → 0``; see the sgd_modified module docstring):
the mean iterate is ``θ0 − mη∇L + η²·½(m²∇²L∇L − Σ_k ∇²L̂_k∇L̂_k) + O(η³)``; the gradient flow
misses the ``−½η²Σ_k ∇²L̂_k∇L̂_k`` term, so its distance is ``O(η²)`` (slope 2); ``L̃_GD``'s flow
supplies ``−½η² m ∇²L∇L`` of it, leaving ``−½η² Σ_k ∇²(L̂_k − L)(∇L̂_k − ∇L)`` (the variance term's
gradient), also ``O(η²)`` (slope 2, a smaller constant when the minibatch gradients are close);
``L̃_SGD``'s flow matches the whole ``η²`` term, so its distance is ``O(η³)`` (slope 3). (Over a
fixed time ``T`` of many epochs the orders would be one lower: slopes 1, 1, 2.)

The flows ``θ' = −∇L_{a,b}``, ``L_{a,b} = L + a‖∇L‖² + b·(1/m)Σ_k‖∇L̂_k − ∇L‖²`` (``a = b = 0``:
gradient flow; ``a = η/4, b = 0``: ``L̃_GD``; ``a = b = η/4``: ``L̃_SGD``) are integrated by
``diffrax`` (Dopri8, PID controller) in rescaled time ``s = t/T ∈ [0, 1]`` so that flows of
different ``T`` share one vmapped program; a second pass at 100x tighter tolerances is the
reference and estimates the integration error, as in ``modified_flow.backward_error``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from dl_course.measures.implicit_bias.modified_flow import fit_slope, ladder
from dl_course.measures.implicit_bias.sgd_modified import all_orders, mean_sgd_epoch, sgd_modified_loss_terms

#: The predicted log-log slopes of distance vs η after one epoch (module docstring).
PREDICTED_SLOPES = {"gradient_flow": 2.0, "gd_modified_flow": 2.0, "sgd_modified_flow": 3.0}


class SGDOrderResult(NamedTuple):
    """Distances between the one-epoch mean SGD iterate and the three flows over a ladder of η.

    Attributes:
      etas: ``[K]`` step sizes (factor-2 ladder, descending). num_batches: ``m``. num_orders: ``m!``.
      dist_gradient_flow, dist_gd_modified_flow, dist_sgd_modified_flow: ``[K]`` Euclidean distances
        at ``T = mη``.
      mean_iterate_loss: ``[K]`` loss at the mean iterate; start_loss: loss at ``θ0``.
      integration_error: max distance between the flows at the given and at 100x tighter tolerances.
      slopes: dict flow name -> least-squares slope of ``log distance`` vs ``log η``.
    """

    etas: np.ndarray
    num_batches: int
    num_orders: int
    dist_gradient_flow: np.ndarray
    dist_gd_modified_flow: np.ndarray
    dist_sgd_modified_flow: np.ndarray
    mean_iterate_loss: np.ndarray
    start_loss: float
    integration_error: float
    slopes: dict


def family_loss(loss_fn: Callable, batches, a, b) -> Callable:
    """``θ ↦ L + a‖∇L‖² + b·(1/m)Σ_k‖∇L̂_k − ∇L‖²`` for ``loss_fn(θ, batch)`` and stacked ``batches``
    (``a``, ``b`` may be traced)."""

    def loss(theta):
        t = sgd_modified_loss_terms(loss_fn, theta, batches, 1.0)  # igr = ‖∇L‖²/4, variance = V/4
        return t.loss + 4.0 * (a * t.igr + b * t.variance)

    return loss


def family_flows(loss_fn: Callable, theta0, batches, horizons, a, b, rtol, atol, *, max_steps: int = 65536):
    """``θ_i(T_i)`` for the flows ``θ' = −∇L_{a_i, b_i}`` from ``theta0`` (:func:`family_loss`),
    integrated in rescaled time ``s ∈ [0, 1]`` (``dθ/ds = −T_i ∇L_{a_i,b_i}``) by Dopri8 at
    ``rtol[i]``, ``atol[i]``; vmapped over ``i``. Returns ``[F, d]``."""

    def one(T, ai, bi, rt, at):
        field = jax.grad(family_loss(loss_fn, batches, ai, bi))
        term = diffrax.ODETerm(lambda s, th, args: -T * field(th))
        sol = diffrax.diffeqsolve(term, diffrax.Dopri8(), t0=0.0, t1=1.0, dt0=None, y0=theta0, max_steps=max_steps,
                                  stepsize_controller=diffrax.PIDController(rtol=rt, atol=at))
        return sol.ys[-1]

    return jax.vmap(one)(*(jnp.asarray(v) for v in (horizons, a, b, rtol, atol)))


def sgd_backward_error(loss_fn: Callable, theta0, batches, eta_max: float, num_etas: int,
                       rtol: float = 1e-11, atol: float = 1e-13) -> SGDOrderResult:
    """Mean one-epoch SGD iterate vs the gradient flow, ``L̃_GD``'s and ``L̃_SGD``'s flows for
    ``η_k = η_max / 2^k`` (module docstring). ``theta0`` a flat vector; works in its dtype (use
    float64: the ``L̃_SGD`` distances fall as ``η³``)."""
    theta0 = jnp.asarray(theta0)
    m = int(jax.tree.leaves(batches)[0].shape[0])
    orders = all_orders(m)
    etas = ladder(eta_max, num_etas)
    mean_it = jax.jit(jax.vmap(lambda eta: mean_sgd_epoch(loss_fn, theta0, batches, eta, orders)))(jnp.asarray(etas))
    zero = np.zeros_like(etas)
    a = np.concatenate([zero, etas / 4, etas / 4])
    b = np.concatenate([zero, zero, etas / 4])
    horizons = np.tile(m * etas, 3)
    n = len(a)
    flows = jax.jit(lambda *args: family_flows(loss_fn, theta0, batches, *args))(
        np.tile(horizons, 2), np.tile(a, 2), np.tile(b, 2), np.repeat([rtol, rtol / 100], n),
        np.repeat([atol, atol / 100], n))
    flows, mean_it = np.asarray(flows, np.float64), np.asarray(mean_it, np.float64)
    coarse, fine = flows[:n], flows[n:]
    integration_error = float(np.max(np.linalg.norm(coarse - fine, axis=-1)))
    k = len(etas)
    dist = np.linalg.norm(fine.reshape(3, k, -1) - mean_it[None], axis=-1)
    full_loss = jax.jit(jax.vmap(lambda th: jnp.mean(jax.vmap(loss_fn, in_axes=(None, 0))(th, batches))))
    losses = np.asarray(full_loss(jnp.asarray(np.concatenate([mean_it, np.asarray(theta0)[None]]))))
    names = ("gradient_flow", "gd_modified_flow", "sgd_modified_flow")
    return SGDOrderResult(
        etas=etas, num_batches=m, num_orders=len(orders), dist_gradient_flow=dist[0], dist_gd_modified_flow=dist[1],
        dist_sgd_modified_flow=dist[2], mean_iterate_loss=losses[:k], start_loss=float(losses[k]),
        integration_error=integration_error, slopes={nm: fit_slope(etas, dist[i]) for i, nm in enumerate(names)})
