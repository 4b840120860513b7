"""The central flow of gradient descent: its time-averaged trajectory at the edge of stability.

Gradient descent ``w ← w − η∇L(w)`` at the edge of stability oscillates along the top Hessian
eigenvectors while ``λmax ≈ 2/η``. Cohen, Damian, Talwalkar, Kolter & Lee (2025, ICLR,
"Understanding Optimization in Deep Learning with Central Flows", arXiv 2410.24206, eq. 6 and
§3.2) model its *time average* by the ODE (time ``τ`` in units of GD steps)

    dw/dτ = −η [ ∇L(w) + ½ ∇_w ⟨∇²L(w), Σ(τ)⟩ ],

where ``Σ ⪰ 0``, the covariance of the oscillation, lives on the eigenvectors ``u_1..u_k`` whose
eigenvalue reached ``2/η`` and is the solution of a complementarity problem that keeps them there:
with ``H_ij(w) = u_iᵀ∇²L(w)u_j`` (the ``u`` held fixed), ``α_ij = ⟨∇H_ij, ∇L⟩`` and
``𝔅[Σ]_ij = Σ_kl ⟨∇H_ij, ∇H_kl⟩ Σ_kl``, the projected Hessian moves as
``dH/dτ = −η(α + ½𝔅[Σ])`` and ``Σ`` solves ``Σ ⪰ 0``, ``G ⪰ 0``, ``⟨Σ, G⟩ = 0`` for
``G = 2/η·I − (diag λ + h·dH/dτ)``, the gap to the threshold after an integration step ``h``
(:mod:`dl_course.measures.implicit_bias.complementarity`). This discrete form (as in the authors' code) holds the
eigenvalues at ``2/η`` without drift; for ``h → 0`` it is the paper's SDCP. With one unstable
direction ``σ² = max(0, −2α/‖∇H‖²)`` at the threshold. The predicted time-averaged loss is
``L(w) + ½⟨∇²L, Σ⟩ = L(w) + tr(Σ)/η`` (eq. 8). Below the threshold ``Σ = 0``: the gradient flow.

Implementation (all inside one jitted program, vmappable over runs with one ``η`` per run):
explicit Euler steps of ``h = 1/substeps`` GD steps (the paper's authors use ``h = 1/4``; the
step-size error is measured against ``h/2`` in the study); at every step the top ``block_size``
Hessian eigenpairs by block Krylov Rayleigh–Ritz warm-started from the previous step's Ritz
vectors (:func:`~dl_course.measures.curvature.krylov.block_krylov`, ``num_matvecs`` HVPs), the ``k``
largest enter ``Σ`` if above ``tracking_threshold/η`` (default 1.5/η), the third-derivative terms
``∇H_ij`` by forward-over-reverse autodiff (one gradient of a Hessian–vector product per pair
``i ≤ j``). :func:`gd_trajectory` and :func:`gradient_flow` give GD and the gradient flow at the
same record times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from dl_course.measures.curvature.krylov import block_krylov, extreme_ritz_pairs, lanczos
from dl_course.measures.implicit_bias.complementarity import (
    sdcp_residuals,
    solve_sdcp,
    sym_to_vec,
    vec_to_sym,
)


class CentralFlowResult(NamedTuple):
    """The central flow recorded every ``record_every`` GD steps (leading axis ``R``; vmapped runs add
    a leading run axis).

    Attributes:
      times: ``(R,)`` record times in GD steps ``0, r, 2r, …``.
      weights: ``(R, d)`` the flow's weights ``w(τ)``.
      loss: ``(R,)`` ``L(w(τ))``.
      predicted_loss: ``(R,)`` the predicted time-averaged GD loss ``L(w) + tr(Σ)/η``.
      sharpness: ``(R,)`` ``λmax(∇²L(w))``, the top Ritz value.
      eigenvalues: ``(R, block_size)`` top Ritz values (``k`` tracked, the rest monitor whether a
        ``(k+1)``-th eigenvalue reaches ``2/η``); residuals ``(R, block_size)`` their Ritz residuals.
      sigma: ``(R, k, k)`` ``Σ`` in the basis of the top ``k`` eigenvectors.
      num_active: ``(R,)`` eigenvalues above the tracking threshold.
      complementarity, infeasibility: ``(R,)`` SDCP residuals (:func:`sdcp_residuals`) of ``Σ``.
    """

    times: jax.Array
    weights: jax.Array
    loss: jax.Array
    predicted_loss: jax.Array
    sharpness: jax.Array
    eigenvalues: jax.Array
    residuals: jax.Array
    sigma: jax.Array
    num_active: jax.Array
    complementarity: jax.Array
    infeasibility: jax.Array


def _hvp(loss_fn, w, v):
    return jax.jvp(jax.grad(loss_fn), (w,), (v,))[1]


def _top_pairs(loss_fn, w, start, num_matvecs, restart):
    """Top ``b = start.shape[0]`` Ritz pairs of ``∇²L(w)`` from the block Krylov space of ``start``."""
    res = block_krylov(lambda v: _hvp(loss_fn, w, v), start, num_matvecs, restart=restart)
    return extreme_ritz_pairs(res, start.shape[0], "top")


def third_derivative_terms(loss_fn: Callable, w: jax.Array, u: jax.Array) -> jax.Array:
    """``∇_w (u_iᵀ ∇²L(w) u_j)`` for the pairs ``i ≤ j`` of the rows of ``u (k, d)`` (held fixed), in
    :func:`~dl_course.measures.implicit_bias.complementarity.sym_to_vec` order and scaling (off-diagonal pairs
    × √2): ``(k(k+1)/2, d)``. Each row is one reverse pass through a Hessian–vector product."""
    k = u.shape[0]
    i, j = np.triu_indices(k)
    scale = jnp.asarray(np.where(i == j, 1.0, np.sqrt(2.0)), w.dtype)
    rows = jax.vmap(lambda a, b: jax.grad(lambda x: jnp.vdot(a, _hvp(loss_fn, x, b)))(w))(u[i], u[j])
    return rows * scale[:, None]


def central_flow_velocity(loss_fn: Callable, w: jax.Array, eta, h, u: jax.Array, eigenvalues: jax.Array,
                          tracking_threshold=1.5, *, qp_iters: int = 200):
    """``(dw/dτ, Σ, aux)`` of the central flow at ``w`` for an Euler step ``h`` (in GD steps), given the
    top ``k`` unit eigenvectors ``u (k, d)`` of ``∇²L(w)`` and their eigenvalues (module docstring).

    ``Σ`` is restricted to the eigenvalues ``≥ tracking_threshold/η``; ``aux`` holds ``loss``,
    ``grad``, ``active`` (bool ``(k,)``), ``complementarity`` and ``infeasibility``."""
    k = u.shape[0]
    loss, g = jax.value_and_grad(loss_fn)(w)
    jac = third_derivative_terms(loss_fn, w, u)  # (p, d): rows ∇H_a
    alpha = jac @ g
    gram = jac @ jac.T
    active = eigenvalues >= tracking_threshold / eta
    a = jnp.diag(2.0 / eta - eigenvalues)
    a = a + h * eta * vec_to_sym(alpha, k)
    b = 0.5 * h * eta * gram
    sigma = solve_sdcp(a, b, active, num_iters=qp_iters)
    comp, infeas = sdcp_residuals(a, b, sigma, active)
    velocity = -eta * (g + 0.5 * jac.T @ sym_to_vec(sigma))
    return velocity, sigma, {"loss": loss, "active": active, "complementarity": comp, "infeasibility": infeas}


def central_flow(loss_fn: Callable, w0: jax.Array, eta, *, key: jax.Array, num_steps: int, record_every: int,
                 substeps: int = 2, k: int = 3, block_size: int | None = None, num_matvecs: int = 16,
                 init_matvecs: int = 60, tracking_threshold=1.5, qp_iters: int = 200) -> CentralFlowResult:
    """Integrate the central flow of GD with step ``eta`` from ``w0`` over ``num_steps`` GD steps.

    Explicit Euler with ``substeps`` steps per GD step (``h = 1/substeps``); the top
    ``block_size`` (default ``k + 1``) eigenpairs come from ``num_matvecs`` HVPs per Euler step,
    block Krylov warm-started from the previous step (the first from a cold Lanczos of
    ``init_matvecs`` HVPs); ``k`` of them may carry ``Σ`` (``tracking_threshold·(1/η)`` and up).
    Records every ``record_every`` GD steps, at ``τ = 0, r, …`` (``num_steps // record_every + 1``
    records). ``w0`` is a flat vector; ``eta``, ``tracking_threshold``, ``w0`` and ``key`` may be
    traced (vmap over runs); the sizes are static.

    Cost per Euler step: 1 gradient, ``num_matvecs`` HVPs, ``k(k+1)/2`` gradients of HVPs, and a
    ``k(k+1)/2``-dimensional QP (negligible).
    """
    b = k + 1 if block_size is None else int(block_size)
    if b < k or num_matvecs < b or record_every < 1 or substeps < 1 or num_steps < record_every:
        raise ValueError(f"need block_size >= k, num_matvecs >= block_size, record_every >= 1, substeps >= 1, "
                         f"num_steps >= record_every; got k={k}, block_size={b}, num_matvecs={num_matvecs}, "
                         f"record_every={record_every}, substeps={substeps}, num_steps={num_steps}")
    num_records = num_steps // record_every + 1
    h = 1.0 / substeps
    dtype = w0.dtype
    k_init, k_restart = jax.random.split(key)
    restart = jax.random.normal(k_restart, w0.shape, dtype)
    init = lanczos(lambda v: _hvp(loss_fn, w0, v), jax.random.normal(k_init, w0.shape, dtype),
                   max(init_matvecs, b), restart=restart)
    _, vectors0, _ = extreme_ritz_pairs(init, b, "top")

    def euler(carry, _):
        w, vectors = carry
        values, vecs, resid = _top_pairs(loss_fn, w, vectors, num_matvecs, restart)
        ok = jnp.all(jnp.isfinite(vecs))
        vecs = jnp.where(ok, vecs, vectors)
        velocity, sigma, aux = central_flow_velocity(loss_fn, w, eta, h, vecs[:k], values[:k], tracking_threshold,
                                                     qp_iters=qp_iters)
        out = (aux["loss"], aux["loss"] + jnp.trace(sigma) / eta, values, resid, sigma,
               jnp.sum(aux["active"]), aux["complementarity"], aux["infeasibility"])
        return (w + h * velocity, vecs), out

    def record(carry, _):
        w = carry[0]
        carry, outs = jax.lax.scan(euler, carry, None, length=record_every * substeps)
        return carry, (w,) + jax.tree.map(lambda x: x[0], outs)

    _, rec = jax.lax.scan(record, (w0, vectors0), None, length=num_records)
    w, loss, pred, values, resid, sigma, active, comp, infeas = rec
    times = jnp.arange(num_records) * record_every
    return CentralFlowResult(times, w, loss, pred, values[:, 0], values, resid, sigma, active, comp, infeas)


def gd_trajectory(loss_fn: Callable, w0: jax.Array, eta, *, num_steps: int, record_every: int):
    """Full-batch GD ``w ← w − η∇L(w)`` from ``w0``: ``(losses (num_steps + 1,), weights (R, d))`` with
    the loss at every step ``0..num_steps`` and the weights at steps ``0, r, 2r, …`` (``R =
    num_steps // record_every + 1``), the record times of :func:`central_flow`."""
    num_records = num_steps // record_every + 1
    vg = jax.value_and_grad(loss_fn)

    def step(w, _):
        loss, g = vg(w)
        return w - eta * g, loss

    def record(w, _):
        w_next, losses = jax.lax.scan(step, w, None, length=record_every)
        return w_next, (w, losses)

    _, (weights, losses) = jax.lax.scan(record, w0, None, length=num_records)
    losses = losses.reshape(-1)[: num_steps + 1]
    return losses, weights


def gradient_flow(loss_fn: Callable, w0: jax.Array, eta, times: jax.Array, *, rtol: float = 1e-6,
                  atol: float = 1e-8, max_steps: int = 1 << 16) -> jax.Array:
    """The gradient flow ``dw/dτ = −η∇L(w)`` (time ``τ`` in GD steps) from ``w0`` at ``times``:
    ``(len(times), d)``, by ``diffrax.diffeqsolve`` with ``Tsit5`` and a PID step-size controller
    (it follows the rising stiffness ``ηλmax`` of the gradient flow, which GD and the central flow
    never see). ``eta`` may be traced."""
    times = jnp.asarray(times, w0.dtype)
    grad = jax.grad(loss_fn)
    term = diffrax.ODETerm(lambda t, w, args: -args * grad(w))
    sol = diffrax.diffeqsolve(term, diffrax.Tsit5(), t0=times[0], t1=times[-1], dt0=None, y0=w0, args=eta,
                              saveat=diffrax.SaveAt(ts=times), max_steps=max_steps,
                              stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol))
    return sol.ys


def sharpness_along(loss_fn: Callable, weights: jax.Array, *, key: jax.Array, num_iters: int = 30) -> jax.Array:
    """``λmax(∇²L)`` at every row of ``weights (R, d)`` by a cold Lanczos of ``num_iters`` HVPs each
    (vmapped over rows): the sharpness of GD or of the gradient flow along its path."""
    def one(w, key):
        z = jax.random.normal(key, (2,) + w.shape, w.dtype)
        return lanczos(lambda v: _hvp(loss_fn, w, v), z[0], num_iters, restart=z[1]).ritz_values[-1]

    return jax.vmap(one)(weights, jax.random.split(key, weights.shape[0]))


def time_average(values, window: int) -> np.ndarray:
    """Centered moving average of ``values[..., T]`` over ``window`` consecutive entries (odd
    ``window``; NaN where the window does not fit): GD's time-averaged loss over a few
    oscillation periods, the quantity the central flow predicts."""
    v = np.asarray(values, np.float64)
    window = int(window) | 1
    half = window // 2
    c = np.cumsum(np.concatenate([np.zeros(v.shape[:-1] + (1,)), v], axis=-1), axis=-1)
    out = np.full(v.shape, np.nan)
    out[..., half: v.shape[-1] - half] = (c[..., window:] - c[..., :-window]) / window
    return out
