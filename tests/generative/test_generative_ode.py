"""ODE solves (diffrax underneath) against closed-form solutions: convergence orders, adaptive
accuracy, direction, vmap, and the reported number of function evaluations against a call counter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.generative import ode


def _field(t, y):
    """A pytree ODE with closed form: u' = cos(t) u (u = u0 exp(sin t)), v' = -2 t v (v = v0 exp(-t^2))."""
    return {"u": jnp.cos(t) * y["u"], "v": -2.0 * t * y["v"]}


def _exact(y0, t0, t1):
    return {"u": y0["u"] * jnp.exp(jnp.sin(t1) - jnp.sin(t0)), "v": y0["v"] * jnp.exp(t0 ** 2 - t1 ** 2)}


def _err(y, ref):
    """Largest error relative to ``1 + |exact|`` (the solver's mixed absolute/relative scale)."""
    return max(float(jnp.max(jnp.abs(y[k] - ref[k]) / (1.0 + jnp.abs(ref[k])))) for k in y)


def test_fixed_step_convergence_orders():
    """Halving the step divides the global error by 2^p: p = 1 for Euler, 2 for Heun and the midpoint
    rule, p = 4 for RK4 (the classical tableau written as a diffrax solver) (ratios within
    [0.75, 1.25] x 2^p; the asymptotic regime is reached at these step sizes), in float64."""
    with jax.enable_x64(True):
        y0 = {"u": jnp.array([1.0, -2.0]), "v": jnp.array(0.5)}
        ref = _exact(y0, 0.0, 2.0)
        solve = jax.jit(lambda y, n, name: ode.solve(_field, y, 0.0, 2.0, solver=name, num_steps=n)[0],
                        static_argnums=(1, 2))
        for name, order, n in (("euler", 1, 200), ("heun", 2, 50), ("midpoint", 2, 50), ("rk4", 4, 20)):
            e1, e2 = _err(solve(y0, n, name), ref), _err(solve(y0, 2 * n, name), ref)
            assert 0.75 * 2 ** order < e1 / e2 < 1.25 * 2 ** order, (name, e1, e2)


def test_dopri5_accuracy_both_directions_and_vmap():
    """The adaptive solver meets its tolerance (global error within 20 x tol, a generous factor for
    error accumulation over the steps), integrates backwards, counts evaluations (7 on the first
    attempted step, 6 on every later one: FSAL), and vmaps over traced tolerances as separate runs."""
    with jax.enable_x64(True):
        y0 = {"u": jnp.array([1.0, -2.0]), "v": jnp.array(0.5)}

        @jax.jit
        def run(y, t0, t1, tol):
            return ode.dopri5(_field, y, t0, t1, rtol=tol, atol=tol)

        for t0, t1 in ((0.0, 3.0), (3.0, 0.5)):
            for tol in (1e-4, 1e-8):
                y, info = run(y0, t0, t1, tol)
                assert bool(info.success)
                assert _err(y, _exact(y0, t0, t1)) < 20 * tol
                assert int(info.nfe) == 1 + 6 * (int(info.accepted) + int(info.rejected))
        _, loose = run(y0, 0.0, 3.0, 1e-4)
        _, tight = run(y0, 0.0, 3.0, 1e-8)
        assert int(tight.nfe) > int(loose.nfe)

        tols = jnp.array([1e-4, 1e-8])
        ys, infos = jax.vmap(run, in_axes=(None, None, None, 0))(y0, 0.0, 3.0, tols)
        for i, tol in enumerate(tols):
            y, info = run(y0, 0.0, 3.0, tol)
            assert int(infos.nfe[i]) == int(info.nfe)
            np.testing.assert_allclose(ys["u"][i], y["u"], rtol=1e-12)


def test_dopri5_reports_failure_when_out_of_steps():
    y, info = jax.jit(lambda y: ode.dopri5(lambda t, y: -50.0 * y, y, 0.0, 10.0, rtol=1e-10, atol=1e-10,
                                           max_steps=5))(jnp.ones(3))
    assert not bool(info.success)
    assert int(info.accepted) + int(info.rejected) == 5


@pytest.mark.parametrize("solver", sorted(ode.ODE_SOLVERS))
def test_reported_nfe_equals_the_number_of_calls(solver):
    """``info.nfe`` (computed from diffrax's step counts and the tableau) equals the number of times
    the right-hand side actually ran, counted by a host callback, forwards and backwards, for every
    solver (unbatched: under vmap diffrax may evaluate extra masked stages)."""
    calls = []

    def f(t, y):
        jax.debug.callback(lambda: calls.append(1))
        return {"u": jnp.cos(t) * y["u"], "v": -2.0 * t * y["v"]}

    y0 = {"u": jnp.array([1.0, -2.0]), "v": jnp.array(0.5)}
    run = jax.jit(lambda y, t0, t1: ode.solve(f, y, t0, t1, solver=solver, num_steps=7, rtol=1e-6, atol=1e-6))
    for t0, t1 in ((0.0, 3.0), (3.0, 0.5)):
        calls.clear()
        _, info = run(y0, t0, t1)
        jax.effects_barrier()
        assert bool(info.success)
        assert int(info.nfe) == len(calls) > 0, (solver, int(info.nfe), len(calls))


def test_unknown_solver():
    with pytest.raises(ValueError, match="dopri5, euler, heun, midpoint, rk4, tsit5"):
        ode.solve(_field, {}, 0.0, 1.0, solver="rk45")
