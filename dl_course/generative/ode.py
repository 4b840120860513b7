"""On-device ODE solvers for ``dy/dt = f(t, y)`` on pytrees: Euler, classical RK4 (fixed step) and an
adaptive Dormand-Prince 5(4) with a ``lax.while_loop`` step-size controller.

All three integrate from ``t0`` to ``t1`` in either direction (the probability-flow ODE is solved
backwards, T -> eps, for sampling and forwards, eps -> T, for likelihoods), are jit-compiled and
vmappable (under ``vmap`` the adaptive loop runs until every member of the batch has finished,
each with its own step sizes), and return ``(y(t1), ODEInfo)``.

Why our own DOPRI5: ``jax.experimental.ode.odeint`` still exists in jax 0.10 but only integrates
forwards over an increasing time grid, is an experimental API, and hides the number of function
evaluations (the cost measure of the probability-flow ODE reported by Song et al. 2021, Table 2).
The reference implementation uses ``scipy.integrate.solve_ivp(method="RK45")`` on the host; this is
the same method (Dormand & Prince 1980; Hairer, Norsett & Wanner, "Solving ODEs I", II.4) on device.
The whole state (e.g. a batch of samples) is one ODE with one step size, as in the reference.
Not reverse-mode differentiable (``while_loop``); the fixed-step solvers are.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class ODEInfo(NamedTuple):
    """Solver statistics: function evaluations, accepted and rejected steps, and whether ``t1`` was
    reached (False only when the adaptive solver ran out of ``max_steps``)."""

    nfe: Any
    accepted: Any
    rejected: Any
    success: Any


def _axpy(y, h, ks, coeffs):
    """``y + h * sum_i coeffs[i] * ks[i]`` on pytrees (zero coefficients skipped)."""
    def comb(y_leaf, *k_leaves):
        acc = y_leaf
        for c, k in zip(coeffs, k_leaves):
            if c != 0.0:
                acc = acc + (h * c) * k
        return acc
    return jax.tree.map(comb, y, *ks)


def euler(f: Callable, y0, t0, t1, num_steps: int):
    """Explicit Euler with ``num_steps`` equal steps: ``y <- y + h f(t, y)``. Global error O(h)."""
    h = (t1 - t0) / num_steps

    def step(y, i):
        t = t0 + i * h
        return _axpy(y, h, [f(t, y)], [1.0]), None

    y, _ = jax.lax.scan(step, y0, jnp.arange(num_steps))
    n = jnp.asarray(num_steps)
    return y, ODEInfo(n, n, jnp.zeros_like(n), jnp.asarray(True))


def rk4(f: Callable, y0, t0, t1, num_steps: int):
    """Classical fourth-order Runge-Kutta with ``num_steps`` equal steps (4 evaluations per step).

    ``k1 = f(t, y)``, ``k2 = f(t + h/2, y + h k1/2)``, ``k3 = f(t + h/2, y + h k2/2)``,
    ``k4 = f(t + h, y + h k3)``, ``y <- y + h (k1 + 2 k2 + 2 k3 + k4)/6``. Global error O(h^4).
    """
    h = (t1 - t0) / num_steps

    def step(y, i):
        t = t0 + i * h
        k1 = f(t, y)
        k2 = f(t + h / 2, _axpy(y, h, [k1], [0.5]))
        k3 = f(t + h / 2, _axpy(y, h, [k2], [0.5]))
        k4 = f(t + h, _axpy(y, h, [k3], [1.0]))
        return _axpy(y, h, [k1, k2, k3, k4], [1 / 6, 1 / 3, 1 / 3, 1 / 6]), None

    y, _ = jax.lax.scan(step, y0, jnp.arange(num_steps))
    n = jnp.asarray(num_steps)
    return y, ODEInfo(4 * n, n, jnp.zeros_like(n), jnp.asarray(True))


# Dormand-Prince 5(4) tableau (Hairer et al., Table II.5.2). B5 gives the propagated solution,
# B5 - B4 the embedded error estimate; the last stage is FSAL (first same as last).
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_E = tuple(b5 - b4 for b5, b4 in zip(_B5, _B4))


def _rms_norm(tree, scale):
    """``sqrt(mean_i (tree_i / scale_i)^2)`` over every element of every leaf (Hairer's norm)."""
    sq = jax.tree.map(lambda v, s: jnp.sum((v / s) ** 2), tree, scale)
    n = sum(v.size for v in jax.tree.leaves(tree))
    return jnp.sqrt(sum(jax.tree.leaves(sq)) / n)


def dopri5(f: Callable, y0, t0, t1, *, rtol=1e-5, atol=1e-5, max_steps: int = 1000, first_step=None,
           safety=0.9, min_factor=0.2, max_factor=10.0):
    """Adaptive Dormand-Prince 5(4) from ``t0`` to ``t1`` (either direction), on device.

    A step from ``y`` with size ``h`` is accepted when the embedded error estimate
    ``err = h sum_i (b5_i - b4_i) k_i`` has ``||err / (atol + rtol max(|y|, |y_new|))||_rms <= 1``;
    either way the next size is ``h * clip(safety * ||.||^(-1/5), min_factor, max_factor)``.
    The initial step follows Hairer et al. (II.4, "starting step size") unless ``first_step`` is
    given. ``rtol``, ``atol`` may be traced; ``max_steps`` (attempted steps) is static and bounds
    the loop. Local extrapolation: the 5th-order solution is propagated.
    """
    dtype = jax.tree.leaves(y0)[0].dtype
    t0 = jnp.asarray(t0, dtype)
    t1 = jnp.asarray(t1, dtype)
    direction = jnp.sign(t1 - t0)
    span = jnp.abs(t1 - t0)
    scale0 = jax.tree.map(lambda v: atol + rtol * jnp.abs(v), y0)
    k1 = f(t0, y0)

    if first_step is None:
        d0, d1 = _rms_norm(y0, scale0), _rms_norm(k1, scale0)
        h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
        h0 = jnp.minimum(h0, span)
        f1 = f(t0 + direction * h0, _axpy(y0, direction * h0, [k1], [1.0]))
        d2 = _rms_norm(jax.tree.map(jnp.subtract, f1, k1), scale0) / h0
        dmax = jnp.maximum(d1, d2)
        h1 = jnp.where(dmax <= 1e-15, jnp.maximum(1e-6, h0 * 1e-3), (0.01 / dmax) ** 0.2)
        h_init = jnp.minimum(100 * h0, h1)
        nfe0 = 2
    else:
        h_init = jnp.asarray(first_step, dtype)
        nfe0 = 1
    h_init = jnp.minimum(h_init, span).astype(dtype)

    def cond(carry):
        t, _, _, _, _, _, attempts = carry
        return (direction * (t1 - t) > 0) & (attempts < max_steps)

    a_matrix = jnp.asarray([list(row) + [0.0] * (7 - len(row)) for row in _A], dtype)  # [7, 7], lower
    c_nodes, b5, e_weights = (jnp.asarray(v, dtype) for v in (_C, _B5, _E))

    def combine(y, h, ks, weights):
        """``y + h sum_j weights[j] ks[j]`` with ``ks`` a pytree of stacked stages ``[7, ...]``."""
        return jax.tree.map(lambda y_leaf, k: y_leaf + h * jnp.tensordot(weights, k, axes=1), y, ks)

    def body(carry):
        t, y, k_first, h_abs, accepted, rejected, attempts = carry
        remaining = direction * (t1 - t)
        last = h_abs >= remaining
        h = direction * jnp.minimum(h_abs, remaining)

        # The six remaining stages in a fori_loop, so that f is traced (and compiled) once, not six
        # times; stage i uses row i of the (zero-padded) tableau.
        def stage(i, ks):
            k_i = f(t + c_nodes[i] * h, combine(y, h, ks, a_matrix[i]))
            return jax.tree.map(lambda stack, k: stack.at[i].set(k), ks, k_i)

        ks = jax.tree.map(lambda k: jnp.zeros((7,) + k.shape, k.dtype).at[0].set(k), k_first)
        ks = jax.lax.fori_loop(1, 7, stage, ks)
        y_new = combine(y, h, ks, b5)  # equals the argument of the FSAL stage ks[6]
        err = combine(jax.tree.map(jnp.zeros_like, y), h, ks, e_weights)
        scale = jax.tree.map(lambda a, b: atol + rtol * jnp.maximum(jnp.abs(a), jnp.abs(b)), y, y_new)
        err_norm = _rms_norm(err, scale)
        ok = err_norm <= 1.0
        factor = jnp.clip(safety * jnp.where(err_norm > 0, err_norm, 1e-10) ** -0.2, min_factor, max_factor)
        # A rejected step never grows h.
        factor = jnp.where(ok, factor, jnp.minimum(factor, 1.0))
        t_next = jnp.where(ok, jnp.where(last, t1, t + h), t)
        pick = lambda a, b: jnp.where(ok, a, b)
        y_next = jax.tree.map(pick, y_new, y)
        k_next = jax.tree.map(lambda stack, k: jnp.where(ok, stack[6], k), ks, k_first)
        return (t_next, y_next, k_next, jnp.abs(h) * factor, accepted + ok, rejected + (~ok),
                attempts + 1)

    zero = jnp.zeros((), jnp.int32)
    carry = (t0, y0, k1, h_init, zero, zero, zero)
    t, y, _, _, accepted, rejected, attempts = jax.lax.while_loop(cond, body, carry)
    info = ODEInfo(nfe=nfe0 + 6 * attempts, accepted=accepted, rejected=rejected,
                   success=direction * (t1 - t) <= 0)
    return y, info


ODE_SOLVERS = {"euler": euler, "rk4": rk4, "dopri5": dopri5}


def solve(f: Callable, y0, t0, t1, *, solver: str = "rk4", num_steps: int = 100, rtol=1e-5, atol=1e-5,
          max_steps: int = 1000):
    """Integrate ``dy/dt = f(t, y)`` from ``t0`` to ``t1`` with a solver from ``ODE_SOLVERS``.

    Fixed-step solvers use ``num_steps``; ``dopri5`` uses ``rtol``, ``atol``, ``max_steps``.
    Returns ``(y(t1), ODEInfo)``.
    """
    if solver not in ODE_SOLVERS:
        raise ValueError(f"unknown ODE solver {solver!r}; valid: {', '.join(sorted(ODE_SOLVERS))}")
    if solver == "dopri5":
        return dopri5(f, y0, t0, t1, rtol=rtol, atol=atol, max_steps=max_steps)
    return ODE_SOLVERS[solver](f, y0, t0, t1, num_steps)
