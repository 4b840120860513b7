"""Backward error analysis of gradient descent: the modified flow it follows (Barrett & Dherin 2021).

Gradient descent ``θ_{k+1} = θ_k − η∇L(θ_k)`` is the explicit Euler discretization of the
gradient flow ``θ' = −∇L(θ)``, so after ``n`` steps, at time ``T = nη``, it is ``O(η)`` away from
that flow. Backward error analysis finds the flow GD follows to higher order, the *modified flow*

    θ' = −∇L̃(θ),        L̃(θ) = L(θ) + (η/4) ‖∇L(θ)‖²,     ∇L̃ = ∇L + (η/2) ∇²L ∇L,

which stays ``O(η²)`` from the GD iterates over a fixed time ``T`` (Barrett & Dherin 2021, ICLR,
"Implicit Gradient Regularization", Thm. 3.1; Hairer, Lubich & Wanner, *Geometric Numerical
Integration*, ch. IX). The extra term is an implicit regularizer penalizing large gradients.

:func:`backward_error` measures both orders on any ``loss_fn(θ) -> scalar`` of a flat parameter
vector: GD for a factor-2 ladder ``η_k = η_max / 2^k`` (:func:`gd_ladder`, one vmapped program)
and the flows of ``L_c = L + c‖∇L‖²`` for ``c = 0`` (the gradient flow) and ``c = η_k/4``
(:func:`gradient_flows`, integrated by ``diffrax.diffeqsolve`` with an adaptive 8th-order
Dormand–Prince solver, vmapped over the flows). The integration error is estimated by a second
integration at 100× tighter tolerances in the same program. The log–log slopes of distance at
``T`` vs ``η`` are the orders (paper: 1 for the gradient flow, 2 for the modified flow).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np


class BackwardErrorResult(NamedTuple):
    """Distances between GD and the two flows over a ladder of step sizes.

    Attributes:
      etas: ``[K]`` step sizes (descending, factor-2 ladder).
      times: ``[R]`` record times ``j·η_max``, ``j = 1..R`` (the last is ``T``).
      dist_gradient_flow, dist_modified_flow: ``[K, R]`` Euclidean distances between the GD
        iterate of step ``η_k`` at time ``t_j`` and the gradient flow / the modified flow of
        ``η_k`` at ``t_j``.
      gd_loss, flow_loss, modified_flow_loss: ``[K, R]``, ``[R]``, ``[K, R]`` loss along each path.
      integration_error: estimated ODE integration error (max over flows and record times of the
        distance between the integrations at the given and at 100x tighter tolerances).
      slope_gradient_flow, slope_modified_flow: least-squares slopes of ``log dist(T)`` vs
        ``log η`` over the ladder.
    """

    etas: np.ndarray
    times: np.ndarray
    dist_gradient_flow: np.ndarray
    dist_modified_flow: np.ndarray
    gd_loss: np.ndarray
    flow_loss: np.ndarray
    modified_flow_loss: np.ndarray
    integration_error: float
    slope_gradient_flow: float
    slope_modified_flow: float


def modified_loss(loss_fn: Callable, eta) -> Callable:
    """``L̃(θ) = L(θ) + (η/4)‖∇L(θ)‖²``, the loss whose gradient flow GD with step ``η`` follows to
    second order (Barrett & Dherin 2021, eq. 2). ``eta`` may be traced (vmapped over)."""
    grad = jax.grad(loss_fn)

    def loss(theta):
        g = grad(theta)
        return loss_fn(theta) + 0.25 * eta * jnp.vdot(g, g)

    return loss


def ladder(eta_max: float, num_etas: int) -> np.ndarray:
    """The factor-2 ladder ``η_k = η_max / 2^k``, ``k < num_etas`` (float64 numpy)."""
    return float(eta_max) / 2.0 ** np.arange(num_etas)


def gd_ladder(loss_fn: Callable, theta0, eta_max: float, num_etas: int, num_records: int):
    """GD from ``theta0`` for ``η_k = η_max/2^k``, ``k < num_etas``, recorded at times
    ``j·η_max`` (``j = 1..num_records``), i.e. after ``j·2^k`` steps of run ``k``.

    One program vmapped over ``k``: every run executes ``2^(K−1)`` inner iterations per record and
    applies only the first ``2^k`` of them (a masked update), so all runs share one scan.
    Returns the iterates ``[K, R, d]`` (the step sizes are :func:`ladder`).
    """
    inner = 2 ** (num_etas - 1)
    grad = jax.grad(loss_fn)

    def one_run(k):
        eta = eta_max / 2.0**k
        active_steps = 2**k

        def record(theta, _):
            def step(th, i):
                return jnp.where(i < active_steps, th - eta * grad(th), th), None

            theta, _ = jax.lax.scan(step, theta, jnp.arange(inner))
            return theta, theta

        return jax.lax.scan(record, theta0, None, length=num_records)[1]

    return jax.vmap(one_run)(jnp.arange(num_etas))


def gradient_flows(loss_fn: Callable, theta0, coeffs, times, rtol, atol, *, max_steps: int = 65536):
    """``θ_i(t)`` at ``times`` for the flows ``θ' = −∇L_{c_i}(θ)``, ``L_c = L + c‖∇L‖²``, from
    ``theta0``, vmapped over ``i`` (``c = 0``: the gradient flow; ``c = η/4``: GD's modified flow).

    Integrated by ``diffrax.diffeqsolve`` with ``Dopri8`` (8th-order Dormand–Prince) and a PID
    step-size controller at relative / absolute tolerances ``rtol[i]``, ``atol[i]`` (arrays, so
    flows at several tolerances share one program). Returns ``[C, len(times), d]``; raises if a
    flow needs more than ``max_steps`` steps.
    """
    times = jnp.asarray(times)

    def one_flow(c, rt, at):
        field = jax.grad(modified_loss(loss_fn, 4.0 * c))
        term = diffrax.ODETerm(lambda t, th, args: -field(th))
        sol = diffrax.diffeqsolve(term, diffrax.Dopri8(), t0=0.0, t1=times[-1], dt0=None, y0=theta0,
                                  saveat=diffrax.SaveAt(ts=times), max_steps=max_steps,
                                  stepsize_controller=diffrax.PIDController(rtol=rt, atol=at))
        return sol.ys

    return jax.vmap(one_flow)(jnp.asarray(coeffs), jnp.asarray(rtol), jnp.asarray(atol))


def fit_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the order of convergence)."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def backward_error(loss_fn: Callable, theta0, eta_max: float, num_etas: int, num_records: int,
                   rtol: float = 1e-10, atol: float = 1e-12) -> BackwardErrorResult:
    """GD vs gradient flow vs modified flow over ``T = num_records · η_max`` for the factor-2
    ladder ``η_k = η_max/2^k`` (module docstring). Flows are integrated at ``rtol`` / ``atol``
    (:func:`gradient_flows`); the integration error is estimated against a second pass at
    ``rtol/100``, ``atol/100`` (the reference for the distances), in the same vmapped program.

    Works in the dtype of ``theta0`` (use float64 for slopes over several decades of distance).
    """
    theta0 = jnp.asarray(theta0)
    etas = ladder(eta_max, num_etas)
    gd = jax.jit(gd_ladder, static_argnums=(0, 2, 3, 4))(loss_fn, theta0, eta_max, num_etas, num_records)
    times = eta_max * np.arange(1, num_records + 1)
    coeffs = np.concatenate([[0.0], etas / 4.0])
    n = len(coeffs)
    both = jax.jit(gradient_flows, static_argnums=0)(
        loss_fn, theta0, np.tile(coeffs, 2), times, np.repeat([rtol, rtol / 100], n), np.repeat([atol, atol / 100], n))
    both, gd = np.asarray(both, np.float64), np.asarray(gd, np.float64)
    coarse, fine = both[:n], both[n:]
    integration_error = float(np.max(np.linalg.norm(coarse - fine, axis=-1)))
    gf, mf = fine[0], fine[1:]
    d_gf = np.linalg.norm(gd - gf[None], axis=-1)
    d_mf = np.linalg.norm(gd - mf, axis=-1)
    k = len(etas)
    losses = np.asarray(jax.jit(jax.vmap(jax.vmap(loss_fn)))(jnp.asarray(np.concatenate([gd, fine]))))
    return BackwardErrorResult(
        etas=etas, times=times, dist_gradient_flow=d_gf, dist_modified_flow=d_mf,
        gd_loss=losses[:k], flow_loss=losses[k], modified_flow_loss=losses[k + 1:],
        integration_error=integration_error,
        slope_gradient_flow=fit_slope(etas, d_gf[:, -1]), slope_modified_flow=fit_slope(etas, d_mf[:, -1]))
