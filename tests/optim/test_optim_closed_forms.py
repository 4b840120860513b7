"""Closed-form behaviour of the update rules on problems solvable by hand (float64 throughout).

Each test runs one jitted, vmapped program over a grid of hyperparameters, so the same code path
as the engine's sweep (traced per-run hyperparameters) is exercised.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dl_course import optim


def _trajectories(factory, loss, theta0, steps, **hparams):
    """θ_1..θ_steps of ``factory(**hparams)`` on ``loss``, vmapped over the leading axis of every
    hyperparameter array (the same length for all). Returns an array [run, step, *θ.shape]."""

    def one(hp):
        tx = factory(**hp)
        grad_fn = jax.grad(loss)

        def step(carry, _):
            theta, state = carry
            updates, state = tx.update(grad_fn(theta), state, theta, grad_fn=grad_fn)
            theta = optax.apply_updates(theta, updates)
            return (theta, state), theta

        _, trajectory = jax.lax.scan(step, (theta0, tx.init(theta0)), None, length=steps)
        return trajectory

    return np.asarray(jax.jit(jax.vmap(one))({k: jnp.asarray(v) for k, v in hparams.items()}))


def test_gd_on_quadratic_is_geometric_and_diverges_exactly_above_two_over_a():
    """GD on ½aθ²: θ_t = (1 − ηa)^t θ_0, so |θ_t| grows iff η > 2/a (and is constant at η = 2/a).
    a = 4 makes 2/a = 0.5 exact in binary, so the boundary case is exact too. Coupled weight decay
    λ is GD on ½(a+λ)θ²."""
    a, theta0, steps = 4.0, 1.5, 40
    factors = np.array([0.25, 0.5, 0.9, 0.99, 1.0, 1.01, 1.1, 2.0])
    with jax.enable_x64(True):
        etas = factors * 2 / a
        decays = np.array([0.0] * len(factors) + [0.5])
        etas = np.append(etas, 0.3)
        traj = _trajectories(
            optim.sgd, lambda th: 0.5 * a * th**2, jnp.asarray(theta0), steps, learning_rate=etas, weight_decay=decays
        )
    t = np.arange(1, steps + 1)
    expected = (1 - etas[:, None] * (a + decays[:, None])) ** t * theta0
    # Tolerance: each step is one multiply-add in float64, relative error ≲ steps·2⁻⁵².
    np.testing.assert_allclose(traj, expected, rtol=1e-12, atol=0)
    final = np.abs(traj[: len(factors), -1])
    np.testing.assert_array_equal(final > theta0, factors > 1.0)
    np.testing.assert_array_equal(final < theta0, factors < 1.0)
    assert final[factors == 1.0] == theta0  # η = 2/a: θ_t = (−1)^t θ_0 exactly


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_heavy_ball_is_stable_exactly_below_two_one_plus_beta_over_a(beta):
    """Heavy ball on ½aθ² is the linear recurrence θ_{t+1} = (1+β−ηa)θ_t − βθ_{t−1} (θ_{−1} = θ_0,
    since v_0 = 0); its roots lie inside the unit disc iff ηa < 2(1+β). Checked (i) step by step
    against the recurrence and (ii) at η = η*(1 ± δ) around η* = 2(1+β)/a, where the spectral
    radius is ≤ 0.95 below and ≥ 1.06 above, so 600 steps separate the cases by > 10¹⁵."""
    a, theta0, steps = 2.0, 1.0, 600
    boundary = 2 * (1 + beta) / a
    factors = np.array([0.5, 0.9, 0.97, 1.03, 1.1])
    etas = factors * boundary
    with jax.enable_x64(True):
        traj = _trajectories(
            optim.momentum,
            lambda th: 0.5 * a * th**2,
            jnp.asarray(theta0),
            steps,
            learning_rate=etas,
            momentum=np.full_like(etas, beta),
        )
    # (i) the recurrence, first 30 steps (before the diverging runs grow past float64 precision).
    expected = np.empty((len(etas), 30))
    previous, current = np.full_like(etas, theta0), np.full_like(etas, theta0)
    for t in range(30):
        previous, current = current, (1 + beta - etas * a) * current - beta * previous
        expected[:, t] = current
    np.testing.assert_allclose(traj[:, :30], expected, rtol=1e-9, atol=1e-12)
    # (ii) stability iff η < 2(1+β)/a.
    final = np.abs(traj[:, -1])
    assert np.all(np.isfinite(final))
    np.testing.assert_array_equal(final < 1e-6, etas < boundary)
    np.testing.assert_array_equal(final > 1e6, etas > boundary)


def test_adam_first_step_is_eta_times_minus_sign_of_gradient():
    """At t = 1, m̂ = g and v̂ = g² whatever β₁, β₂, so Δθ = −η g/(|g| + ε): within η·ε/|g| of
    −η sign(g). Gradients span 1e-9..1e2 so the ε-dominated regime is visible too."""
    g = np.array([3e2, -1.0, 2e-3, -1e-6, 1e-9, -7.5])
    eta, eps = 0.01, 1e-8
    with jax.enable_x64(True):
        theta = jnp.zeros_like(g)
        steps = []
        for b1, b2 in [(0.9, 0.999), (0.0, 0.5), (0.99, 0.9999)]:
            tx = optim.adam(jnp.asarray(eta), b1=jnp.asarray(b1), b2=jnp.asarray(b2), eps=eps)
            steps.append(np.asarray(tx.update(jnp.asarray(g), tx.init(theta), theta)[0]))
    for step in steps:
        np.testing.assert_allclose(step, -eta * g / (np.abs(g) + eps), rtol=1e-12)
        # |Δθ + η sign(g)| = ηε/(|g| + ε) ≤ η·min(1, ε/|g|), up to the cancellation's rounding.
        bound = eta * np.minimum(1.0, eps / np.abs(g)) + 4 * np.finfo(np.float64).eps * eta
        assert np.all(np.abs(step + eta * np.sign(g)) <= bound)
    large = np.abs(g) >= 1e-3
    np.testing.assert_allclose(steps[0][large], -eta * np.sign(g[large]), rtol=1e-5)


def test_scale_invariance_to_rescaling_the_loss():
    """Trajectories on c·L for c ∈ {1e-3, 1, 1e3} coincide for Adam (ε = 0: m̂/√v̂ is homogeneous
    of degree 0 in g), sign descent and normalized GD (ε = 0), and do not for SGD (the contrast
    shows the check can fail). L is smooth, non-separable and non-quadratic. Tolerance 1e-9
    relative: the rescaling cancels up to float64 rounding (~1e-16 per operation) amplified along
    30 steps of a smooth map."""
    rules = {
        "adam": lambda: optim.adam(0.01, eps=0.0),
        "sign_descent": lambda: optim.sign_descent(0.01),
        "normalized_gd": lambda: optim.normalized_gd(0.01, eps=0.0),
        "sgd": lambda: optim.sgd(0.01),
    }
    theta0 = np.linspace(0.3, -0.4, 5)
    scales = np.array([1e-3, 1.0, 1e3])
    with jax.enable_x64(True):
        A = jnp.asarray(np.random.default_rng(3).normal(size=(7, 5)))
        y = jnp.linspace(-1.0, 2.0, 7)

        def run(c):
            grad_fn = jax.grad(lambda th: c * jnp.sum(jnp.logaddexp(A @ th - y, y - A @ th)))
            out = {}
            for name, make in rules.items():
                tx = make()

                def step(carry, _, tx=tx):
                    theta, state = carry
                    updates, state = tx.update(grad_fn(theta), state, theta)
                    theta = optax.apply_updates(theta, updates)
                    return (theta, state), theta

                theta = jnp.asarray(theta0)
                out[name] = jax.lax.scan(step, (theta, tx.init(theta)), None, length=30)[1]
            return out

        trajs = jax.device_get(jax.jit(jax.vmap(run))(jnp.asarray(scales)))
    for name, traj in trajs.items():
        moved = np.max(np.abs(traj[1, -1] - theta0))
        assert moved > 0.01, name
        difference = max(np.max(np.abs(traj[i] - traj[1])) for i in (0, 2))
        if name == "sgd":
            assert difference > 1e-3
        else:
            assert difference <= 1e-9 * moved, name


def test_adagrad_step_shrinks_like_inverse_sqrt_t_on_a_constant_gradient():
    """On L(θ) = gᵀθ, s_t = t g², so the t-th step is −η g/√(a₀ + t g² + ε): exactly −η sign(g)/√t
    when a₀ = ε = 0, and with optax's defaults √t·|Δθ_t| increases to η."""
    g = np.array([2.0, -0.5, 1e-2])
    eta, steps = 0.1, 200
    with jax.enable_x64(True):
        traj = _trajectories(
            optim.adagrad,
            lambda th: jnp.dot(jnp.asarray(g), th),
            jnp.zeros(3),
            steps,
            learning_rate=np.array([eta, eta]),
            initial_accumulator_value=np.array([0.0, 0.1]),
            eps=np.array([0.0, 1e-7]),
        )
    deltas = np.diff(np.concatenate([np.zeros((2, 1, 3)), traj], axis=1), axis=1)
    t = np.arange(1, steps + 1)[:, None]
    np.testing.assert_allclose(deltas[0], -eta * np.sign(g) / np.sqrt(t), rtol=1e-12)
    np.testing.assert_allclose(deltas[1], -eta * g / np.sqrt(0.1 + t * g**2 + 1e-7), rtol=1e-12)
    scaled = np.sqrt(t) * np.abs(deltas[1])
    assert np.all(np.diff(scaled, axis=0) > 0) and np.all(scaled < eta)
    np.testing.assert_allclose(scaled[-1, :2], eta, rtol=1e-3)  # |g| ≫ √(a₀/t): already ≈ η


def test_normalized_gd_step_length_survives_tiny_gradients():
    """|g| ~ 1e-25: the squares underflow in float32, the norm must not (step stays ~eta)."""
    import jax.numpy as jnp

    from dl_course.optim import normalized_gd

    g = {"w": jnp.full((4,), 1e-25, jnp.float32)}
    tx = normalized_gd(0.1, eps=1e-30)
    upd, _ = tx.update(g, tx.init(g), g)
    assert abs(float(jnp.linalg.norm(upd["w"])) - 0.1) < 1e-5
