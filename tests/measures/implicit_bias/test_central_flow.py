"""Central flow of GD (Cohen et al. 2025) and its complementarity solver against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.measures import (
    central_flow,
    gd_trajectory,
    gradient_flow,
    sdcp_residuals,
    solve_sdcp,
    sym_to_vec,
    time_average,
    vec_to_sym,
)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# ---- the complementarity problem -------------------------------------------------------------------------------

def _random_problem(rng, k, cond=30.0):
    p = k * (k + 1) // 2
    q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    b = q @ np.diag(np.geomspace(1.0, 1.0 / cond, p)) @ q.T
    a = rng.normal(size=(k, k))
    return jnp.asarray(0.5 * (a + a.T)), jnp.asarray(b)


def test_vec_is_an_isometry(x64):
    rng = np.random.default_rng(0)
    x, y = (jnp.asarray(m + m.T) for m in rng.normal(size=(2, 3, 3)))
    assert float(sym_to_vec(x) @ sym_to_vec(y)) == pytest.approx(float(jnp.sum(x * y)), rel=1e-12)
    np.testing.assert_allclose(vec_to_sym(sym_to_vec(x), 3), x, rtol=1e-14)


def test_one_direction_is_the_closed_form(x64):
    """k = 1: σ² = max(0, −a/b)."""
    for a, b, want in ((-0.3, 2.0, 0.15), (0.4, 2.0, 0.0)):
        got = solve_sdcp(jnp.array([[a]]), jnp.array([[b]]))
        assert float(got[0, 0]) == pytest.approx(want, abs=1e-15)


@pytest.mark.parametrize("k", [2, 3])
def test_sdcp_meets_its_kkt_conditions(x64, k):
    """Σ ⪰ 0, G = A + 𝔅[Σ] ⪰ 0 and ⟨Σ, G⟩ = 0 characterise the solution (the QP is convex): on random
    problems with cond(𝔅) = 30 the 200 FISTA iterations reach residuals below 1e-8 (‖A‖ ~ 1)."""
    rng = np.random.default_rng(k)
    solve, residuals = jax.jit(solve_sdcp), jax.jit(sdcp_residuals)
    for _ in range(5):
        a, b = _random_problem(rng, k)
        sigma = solve(a, b)
        comp, infeas = residuals(a, b, sigma)
        assert float(jnp.linalg.eigvalsh(sigma)[0]) >= -1e-12
        assert float(comp) < 1e-8 and float(infeas) < 1e-8
        assert float(jnp.trace(sigma)) > 0 or float(jnp.linalg.eigvalsh(a)[0]) >= 0


def test_sdcp_decoupled_and_masked(x64):
    """Diagonal A and 𝔅 decouple: σ_i² = max(0, −a_i/b_i); a masked direction carries nothing."""
    a = jnp.diag(jnp.array([-1.0, 0.5, -2.0]))
    b = jnp.diag(jnp.array([2.0, 1.0, 4.0, 3.0, 5.0, 1.0]))  # vec order: 11, 12, 13, 22, 23, 33
    solve = jax.jit(solve_sdcp)
    np.testing.assert_allclose(solve(a, b, jnp.ones(3, bool)), jnp.diag(jnp.array([0.5, 0.0, 2.0])), atol=1e-12)
    masked = solve(a, b, jnp.array([True, True, False]))
    np.testing.assert_allclose(masked, jnp.diag(jnp.array([0.5, 0.0, 0.0])), atol=1e-12)


# ---- a model whose central flow is known in closed form --------------------------------------------------------
# L(x1, x2, y1, y2) = ½ S1(y) x1² + ½ S2(y) x2² − c·y with S = s + M y, M = [[1, γ], [γ, 1]]. On x = 0 the
# Hessian is diag(S1, S2, 0, 0), ∇_w(u_iᵀ∇²L u_i) = (0, 0, M[i]) and the central flow keeps x = 0: y moves at
# the constant velocity η(c − ½ M_Aᵀ σ_A), σ_A = 2 (M_A M_Aᵀ)⁻¹ M_A c holding the active S_A at 2/η, so y(τ) is
# piecewise linear with kinks where an S_i reaches 2/η, and at the end y is at rest with Σ = diag(2 M⁻¹ c).

S0 = np.array([1.0, 1.5])


def _toy(gamma, c):
    """``(loss, exact_path)`` of the toy with coupling ``gamma`` and drifts ``c``."""
    m = np.array([[1.0, gamma], [gamma, 1.0]])

    def loss(w):
        x, y = w[:2], w[2:]
        s = jnp.asarray(S0) + jnp.asarray(m) @ y
        return 0.5 * jnp.sum(s * x * x) - jnp.vdot(jnp.asarray(c), y)

    def exact_path(eta, times):
        """``(y (R, 2), tr Σ (R,), largest velocity jump at a kink)``, event by event."""
        thr = 2.0 / eta
        y, tau, active, out, jumps, v_prev = np.zeros(2), 0.0, [], [], [0.0], None
        times = list(times)
        while times:
            sigma = np.zeros(2)
            if active:
                ma = m[active]
                sigma[active] = 2.0 * np.linalg.solve(ma @ ma.T, ma @ c)
            v = eta * (c - 0.5 * m.T @ sigma)
            if v_prev is not None:
                jumps.append(np.linalg.norm(v - v_prev))
            v_prev = v
            ds, s = m @ v, S0 + m @ y
            hits = [((thr - s[i]) / ds[i], i) for i in range(2) if i not in active and ds[i] > 1e-15]
            t_hit, who = min(hits) if hits else (np.inf, None)
            while times and times[0] <= tau + t_hit:
                t = times.pop(0)
                out.append((y + (t - tau) * v, sigma.sum()))
            if not hits:
                break
            y, tau = y + t_hit * v, tau + t_hit
            active = sorted(active + [who]) if who is not None else active
        return np.array([o[0] for o in out]), np.array([o[1] for o in out]), max(jumps)

    return loss, exact_path


@pytest.mark.parametrize("k", [1, 2])
def test_central_flow_equals_the_closed_form(x64, k):
    """``k = 2`` (the QP): S2 reaches 2/η at τ ≈ 192, S1 at τ ≈ 279, then y rests with Σ = diag(0.032, 0.016).
    ``k = 1`` (the closed form σ² = −2α/‖∇H‖²): a decoupled model where only S1 reaches 2/η (σ² = 2c1)."""
    gamma, c = (0.5, np.array([0.02, 0.016])) if k == 2 else (0.0, np.array([0.02, 0.0]))
    loss, exact_path = _toy(gamma, c)
    eta, substeps = 0.5, 4
    res = jax.jit(lambda e: central_flow(loss, jnp.zeros(4), e, key=jax.random.key(0), num_steps=600,
                                         record_every=10, substeps=substeps, k=k, num_matvecs=4))(eta)
    y, tr, jump = exact_path(eta, np.asarray(res.times, float))
    # Euler is exact on each linear piece; the step straddling a kink lands exactly on 2/η (the discrete
    # complementarity), which moves y by at most h·|Δv| per kink (2 kinks at most).
    np.testing.assert_allclose(res.weights[:, 2:], y, atol=2 * jump / substeps + 1e-10)
    np.testing.assert_allclose(res.weights[:, :2], 0.0, atol=1e-12)
    np.testing.assert_allclose(res.sigma.trace(axis1=1, axis2=2)[-5:], tr[-5:], rtol=1e-8)  # at rest
    assert tr[-1] > 0 and (k == 1 or int(res.num_active[-1]) == 2)
    np.testing.assert_allclose(res.sharpness[-5:], 2.0 / eta, rtol=1e-10)
    assert float(res.predicted_loss[-1]) == pytest.approx(float(res.loss[-1] + tr[-1] / eta), rel=1e-8)
    assert float(res.complementarity.max()) < 1e-8 and float(res.infeasibility.max()) < 1e-8


# ---- neural network: below the threshold, vmap -------------------------------------------------------------------

def _mlp_problem():
    kx, kw = jax.random.split(jax.random.key(3))
    x = jax.random.normal(kx, (24, 3))
    y = jnp.sin(x @ jnp.array([1.0, -0.5, 0.3]))
    d_in, width = 3, 8
    shapes = [(d_in, width), (width,), (width, 1), (1,)]
    sizes = [int(np.prod(s)) for s in shapes]
    w0 = 0.5 * jax.random.normal(kw, (sum(sizes),))

    def loss(w):
        parts, i = [], 0
        for s, n in zip(shapes, sizes):
            parts.append(w[i:i + n].reshape(s))
            i += n
        out = jnp.tanh(x @ parts[0] + parts[1]) @ parts[2] + parts[3]
        return 0.5 * jnp.mean((out[:, 0] - y) ** 2)

    return loss, w0


_MLP_STEPS, _MLP_EVERY, _MLP_SUBSTEPS = 100, 20, 2


def _mlp_flow(loss, w0):
    """The central flow of ``loss`` from ``w0`` as a function of η (the same static sizes in both tests)."""
    return lambda eta: central_flow(loss, w0, eta, key=jax.random.key(1), num_steps=_MLP_STEPS,
                                    record_every=_MLP_EVERY, substeps=_MLP_SUBSTEPS, k=2)


def test_below_the_threshold_it_is_the_gradient_flow(x64):
    """η small enough that λmax < 1.5/η throughout: Σ = 0, every Euler step is a GD step of ηh (equal to
    rounding), and the flow is within the Euler error of diffrax's gradient flow (O(h), ~1e-3 relative here)."""
    loss, w0 = _mlp_problem()
    eta = 0.05
    res = jax.jit(_mlp_flow(loss, w0))(eta)
    assert float(res.sharpness.max()) < 1.5 / eta
    assert float(jnp.abs(res.sigma).max()) == 0.0
    _, gd = jax.jit(lambda w: gd_trajectory(loss, w, eta / _MLP_SUBSTEPS, num_steps=_MLP_STEPS * _MLP_SUBSTEPS,
                                            record_every=_MLP_EVERY * _MLP_SUBSTEPS))(w0)
    np.testing.assert_allclose(res.weights, gd, atol=1e-12)
    gf = jax.jit(lambda w: gradient_flow(loss, w, eta, res.times.astype(w.dtype), rtol=1e-10, atol=1e-12))(w0)
    err = float(jnp.max(jnp.linalg.norm(res.weights - gf, axis=-1)))
    assert 0 < err < 1e-2 * float(jnp.linalg.norm(gf[-1] - w0))


def test_vmapped_equals_per_run(x64):
    """One program over two step sizes (one at the edge of stability) = two separate runs."""
    loss, w0 = _mlp_problem()
    etas = jnp.array([0.05, 1.5])
    run = _mlp_flow(loss, w0)
    batched = jax.jit(jax.vmap(run))(etas)
    assert float(batched.sigma[-1].trace(axis1=1, axis2=2).max()) > 0  # the largest η is at the edge
    single_run = jax.jit(run)
    for i, eta in enumerate(etas):
        single = single_run(eta)
        for name in ("weights", "predicted_loss", "sharpness", "sigma"):
            np.testing.assert_allclose(getattr(batched, name)[i], getattr(single, name), rtol=1e-9, atol=1e-11,
                                       err_msg=name)


def test_time_average():
    v = np.arange(10.0)
    out = time_average(v[None], 3)[0]
    assert np.isnan(out[0]) and np.isnan(out[-1])
    np.testing.assert_allclose(out[1:-1], v[1:-1])
    np.testing.assert_allclose(time_average(np.array([1.0, 3.0] * 5), 5)[2:-2], [1.8, 2.2] * 3)
