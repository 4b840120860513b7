"""ODE solves ``dy/dt = f(t, y)`` on pytrees through ``diffrax.diffeqsolve`` (Kidger 2021).

One entry point, ``solve(f, y0, t0, t1, solver=..., ...) -> (y(t1), ODEInfo)``, over the solvers of
``ODE_SOLVERS``:

* adaptive ``"dopri5"`` (Dormand & Prince 1980, the method of scipy's ``RK45`` used by the reference
  code of Song et al. 2021) and ``"tsit5"`` (Tsitouras 2011), with diffrax's ``PIDController``
  (here a plain I-controller, ``pcoeff = dcoeff = 0``, like scipy's), ``rtol = atol = 1e-5`` by
  default (Song et al. 2021, App. D.2), at most ``max_steps`` attempted steps and a first step of
  ``first_step`` or, by default, diffrax's: 0.01 (diffrax 0.7 applies Hairer's starting-step
  heuristic only to a bare ``ODETerm``, and ``diffeqsolve`` wraps every term first; the controller
  shrinks a first step that is too large at the cost of rejected steps);
* fixed-step ``"euler"``, ``"heun"``, ``"midpoint"`` (diffrax's) and the classical ``"rk4"`` (a
  ``diffrax.AbstractERK`` with the 1/6-1/3-1/3-1/6 tableau, which diffrax does not ship) on
  ``num_steps`` equal steps (``ConstantStepSize``), for teaching and speed comparisons.

Integration runs in either direction (the probability-flow ODE is solved backwards, T -> eps, to
sample and forwards, eps -> T, for likelihoods). Everything is jit-compilable and vmappable: under
``jax.vmap`` the adaptive loop runs until every member of the batch has finished, each with its own
step sizes (a ``diffrax`` property), and ``rtol`` / ``atol`` may be traced. The whole state (e.g. a
batch of samples) is one ODE with one step size, as in the reference.

Cost. ``ODEInfo.nfe`` is the number of evaluations of ``f``, the cost measure of the
probability-flow ODE (Song et al. 2021, Table 2). diffrax reports steps, not evaluations; for
explicit Runge-Kutta methods the count follows from the tableau: ``s`` stages per attempted step,
minus one per step after the first for FSAL methods (Dopri5, Tsit5: the last stage of a step is the
first of the next, reused after a rejection too). ``tests/generative/test_generative_ode.py`` checks
the formula against a counter of the actual calls.

Differentiation: not needed by the package (the likelihood is evaluated, not trained); diffrax's
default adjoint (recursive checkpointing) would allow reverse mode through the adaptive solve.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from diffrax import AbstractERK, ButcherTableau, ThirdOrderHermitePolynomialInterpolation


class ODEInfo(NamedTuple):
    """Solver statistics: function evaluations, accepted and rejected steps, and whether ``t1`` was
    reached (False only when the adaptive solver ran out of ``max_steps``)."""

    nfe: Any
    accepted: Any
    rejected: Any
    success: Any


_RK4_TABLEAU = ButcherTableau(
    c=np.array([0.5, 0.5, 1.0]),
    b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    b_error=np.zeros(4),  # no embedded method: RK4 is used with constant steps only
    a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
)


class RK4(AbstractERK):
    """Classical fourth-order Runge-Kutta (Kutta 1901) as a diffrax solver, for constant steps:
    ``k1 = f(t, y)``, ``k2 = f(t + h/2, y + h k1/2)``, ``k3 = f(t + h/2, y + h k2/2)``,
    ``k4 = f(t + h, y + h k3)``, ``y <- y + h (k1 + 2 k2 + 2 k3 + k4) / 6``. Global error O(h^4)."""

    tableau: ClassVar[ButcherTableau] = _RK4_TABLEAU
    interpolation_cls: ClassVar[Callable[..., ThirdOrderHermitePolynomialInterpolation]] = (
        ThirdOrderHermitePolynomialInterpolation.from_k)

    def order(self, terms):
        del terms
        return 4


class _Spec(NamedTuple):
    make: Callable[[], Any]
    adaptive: bool
    stages: int      # evaluations of f per step
    fsal: bool       # first stage of a step = last stage of the previous one


ODE_SOLVERS = {
    "euler": _Spec(diffrax.Euler, False, 1, False),
    "heun": _Spec(diffrax.Heun, False, 2, False),
    "midpoint": _Spec(diffrax.Midpoint, False, 2, False),
    "rk4": _Spec(RK4, False, 4, False),
    "dopri5": _Spec(diffrax.Dopri5, True, 7, True),
    "tsit5": _Spec(diffrax.Tsit5, True, 7, True),
}
ADAPTIVE = tuple(k for k, v in ODE_SOLVERS.items() if v.adaptive)


def check_solver(solver: str):
    """The ``ODE_SOLVERS`` entry of ``solver``; unknown names raise ``ValueError`` listing the valid ones."""
    if solver not in ODE_SOLVERS:
        raise ValueError(f"unknown ODE solver {solver!r}; valid: {', '.join(sorted(ODE_SOLVERS))}")
    return ODE_SOLVERS[solver]


def solve(f: Callable, y0, t0, t1, *, solver: str = "dopri5", num_steps: int = 100, rtol=1e-5, atol=1e-5,
          max_steps: int = 4096, first_step=None):
    """Integrate ``dy/dt = f(t, y)`` from ``t0`` to ``t1`` with ``diffrax.diffeqsolve``.

    Args:
      f: ``f(t, y) -> dy/dt``, a pytree like ``y``; ``t`` is a scalar.
      y0: initial state (pytree of arrays).
      t0, t1: start and end times, ``t1 < t0`` allowed (may be traced).
      solver: a key of ``ODE_SOLVERS``. Adaptive (``dopri5``, ``tsit5``): step-size control with
        ``||err / (atol + rtol max(|y|, |y_new|))||_rms <= 1`` per accepted step, at most
        ``max_steps`` attempted steps (static), first step ``first_step`` (default: diffrax's 0.01).
        Fixed-step (``euler``, ``heun``, ``midpoint``, ``rk4``): ``num_steps`` (static) equal steps.
    Returns ``(y(t1), ODEInfo)``; ``info.success`` is False when ``max_steps`` ran out (then
    ``y`` is the state where the solver stopped; no exception, so that a vmapped batch survives).
    """
    spec = check_solver(solver)
    dtype = jax.tree.leaves(y0)[0].dtype
    t0 = jnp.asarray(t0, dtype)
    t1 = jnp.asarray(t1, dtype)
    term = diffrax.ODETerm(lambda t, y, args: f(t, y))
    if spec.adaptive:
        controller = diffrax.PIDController(rtol=rtol, atol=atol)
        dt0 = None if first_step is None else jnp.sign(t1 - t0) * jnp.asarray(first_step, dtype)
        steps = max_steps
    else:
        controller = diffrax.ConstantStepSize()
        dt0 = (t1 - t0) / num_steps
        steps = num_steps
    sol = diffrax.diffeqsolve(term, spec.make(), t0, t1, dt0, y0, stepsize_controller=controller,
                              max_steps=steps, saveat=diffrax.SaveAt(t1=True), throw=False)
    y = jax.tree.map(lambda leaf: leaf[-1], sol.ys)
    attempted = jnp.asarray(sol.stats["num_steps"])
    accepted = jnp.asarray(sol.stats["num_accepted_steps"])
    rejected = jnp.asarray(sol.stats["num_rejected_steps"])
    if spec.fsal:
        nfe = jnp.where(attempted > 0, 1 + (spec.stages - 1) * attempted, 0)
    else:
        nfe = spec.stages * attempted
    success = sol.result == diffrax.RESULTS.successful
    return y, ODEInfo(nfe=nfe, accepted=accepted, rejected=rejected, success=success)


def euler(f: Callable, y0, t0, t1, num_steps: int):
    """Explicit Euler with ``num_steps`` equal steps: ``y <- y + h f(t, y)``. Global error O(h)."""
    return solve(f, y0, t0, t1, solver="euler", num_steps=num_steps)


def rk4(f: Callable, y0, t0, t1, num_steps: int):
    """Classical RK4 (``RK4``) with ``num_steps`` equal steps, 4 evaluations per step."""
    return solve(f, y0, t0, t1, solver="rk4", num_steps=num_steps)


def dopri5(f: Callable, y0, t0, t1, *, rtol=1e-5, atol=1e-5, max_steps: int = 4096, first_step=None):
    """Adaptive Dormand-Prince 5(4) (diffrax's ``Dopri5`` with a ``PIDController``), as ``solve``."""
    return solve(f, y0, t0, t1, solver="dopri5", rtol=rtol, atol=atol, max_steps=max_steps,
                 first_step=first_step)


def tsit5(f: Callable, y0, t0, t1, *, rtol=1e-5, atol=1e-5, max_steps: int = 4096, first_step=None):
    """Adaptive Tsitouras 5(4) (diffrax's ``Tsit5`` with a ``PIDController``), as ``solve``."""
    return solve(f, y0, t0, t1, solver="tsit5", rtol=rtol, atol=atol, max_steps=max_steps,
                 first_step=first_step)
