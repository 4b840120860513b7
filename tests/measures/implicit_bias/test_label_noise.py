"""Label-noise SGD on a diagonal linear network (``dl_course.measures.implicit_bias.label_noise``) against exact
computations: the closed-form trace against the dense Hessian, GD as the σ = 0, B = n case of the
vmapped continuation, and the rate / exponent helpers on known sequences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from dl_course.measures import hessian_trace
from dl_course.measures.implicit_bias import label_noise as ln


def _data(n=6, d=10, seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((n, d)))
    w = np.zeros(d)
    w[:2] = [1.0, -1.0]
    return x, x @ jnp.asarray(w)


def test_trace_closed_form_equals_the_dense_hessian_anywhere():
    """For w = u⊙u − v⊙v the residual term of ∇²L has zero trace (∂²f/∂u² = +2x, ∂²f/∂v² = −2x), so
    tr ∇²L = (4/n) Σ_j ‖X_j‖² (u_j² + v_j²) at every point, not only on the manifold."""
    x, y = _data()
    rng = np.random.default_rng(1)
    p = ln.DiagonalNet(jnp.asarray(rng.standard_normal(10)), jnp.asarray(rng.standard_normal(10)))
    flat, unravel = ravel_pytree(p)
    dense = jax.jit(jax.hessian(lambda f: ln.mse_loss(unravel(f), x, y)))(flat)
    assert float(ln.mse_loss(p, x, y)) > 0.1  # off the manifold: the residual term is present
    np.testing.assert_allclose(float(jnp.trace(dense)), float(ln.manifold_trace(p, x)), rtol=1e-12)
    est, se = jax.jit(lambda q: hessian_trace(lambda r: ln.mse_loss(r, x, y), q, key=jax.random.PRNGKey(0),
                                              num_samples=400))(p)
    assert abs(float(est) - float(ln.manifold_trace(p, x))) < 4 * float(se)  # Hutchinson: within 4 standard errors


def test_gd_run_of_the_vmapped_continuation_is_plain_gd_and_label_noise_lowers_the_trace():
    x, y = _data()
    p0 = jax.jit(ln.fit_interpolant, static_argnums=(2, 3, 4))(x, y, 1.0, 0.02, 3000)
    assert float(ln.mse_loss(p0, x, y)) < 1e-12
    ps = jax.jit(ln.continue_training, static_argnums=(7, 8))(p0, x, y, jax.random.PRNGKey(0), [0.02, 0.02, 0.02],
                                                              [0.0, 0.0, 1.0], [6, 2, 2], 400, 200)
    assert ps.u.shape == (3, 3, 10)
    grad = jax.grad(ln.mse_loss)
    p = jax.jit(lambda q: jax.lax.fori_loop(0, 400, lambda i, r: jax.tree.map(lambda a, g: a - 0.02 * g, r,
                                                                              grad(r, x, y)), q))(p0)
    np.testing.assert_allclose(ps.u[0, -1], p.u, rtol=1e-12)  # B = n, σ = 0: GD (float64 rounding)
    trace = jax.vmap(jax.vmap(lambda q: ln.manifold_trace(q, x)))(ps)
    assert abs(float(trace[1, -1] / trace[1, 0]) - 1) < 1e-6  # SGD at an interpolant: every minibatch gradient is 0
    assert float(trace[2, -1]) < 0.97 * float(trace[2, 0])  # label noise: the trace falls


def test_rate_helpers_on_known_sequences():
    steps = np.arange(0, 1001, 100)
    trace = 100.0 - 0.05 * steps  # falls by 10% at step 200
    assert ln.steps_to_fraction(steps, trace, 0.1) == 200.0
    assert ln.steps_to_fraction(steps, trace, 0.15) == 300.0
    assert np.isnan(ln.steps_to_fraction(steps, trace, 0.9))
    etas, sigmas = np.array([0.1, 0.2, 0.1, 0.2]), np.array([0.5, 0.5, 1.0, 1.0])
    a, b = ln.fit_exponents(etas, sigmas, 3.0 * etas**2 * sigmas**1.5)
    assert abs(a - 2.0) < 1e-9 and abs(b - 1.5) < 1e-9
