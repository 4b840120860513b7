"""SAM / ASAM against hand-derived updates on a quadratic, and under a vmapped sweep.

On L(θ) = ½ θᵀAθ (θ a two-leaf pytree, A symmetric positive definite on the flattened θ) every
quantity has a closed form: g = Aθ, ε = ρ g/‖g‖, g_SAM = A(θ + ε). Float64; tolerances 1e-12
relative (a handful of float64 operations on O(1) numbers).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dl_course import optim

RHO, ETA = 0.3, 0.1


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(5, 5))
    A = m @ m.T / 5 + np.eye(5)
    theta = {"w": rng.normal(size=(2, 2)), "b": rng.normal(size=(1,))}
    return A, theta


def _flat(tree):
    return np.concatenate([np.ravel(tree["b"]), np.ravel(tree["w"])])  # jax.tree leaf order: b, w


def _unflat(vector, like):
    return {"b": vector[:1].reshape(like["b"].shape), "w": vector[1:].reshape(like["w"].shape)}


def _loss(A):
    A = jnp.asarray(A)

    def loss(theta):
        flat = jnp.concatenate([jnp.ravel(theta["b"]), jnp.ravel(theta["w"])])
        return 0.5 * flat @ A @ flat

    return loss


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_sam_step_on_a_quadratic_matches_the_hand_derived_update(weight_decay):
    A, theta = _problem()
    with jax.enable_x64(True):
        grad_fn = jax.grad(_loss(A))

        @jax.jit
        def step(theta, eta, rho):
            seen = []

            def recording_grad_fn(params):
                seen.append(params)
                return grad_fn(params)

            tx = optim.sam(eta, rho=rho, weight_decay=weight_decay)
            grads = grad_fn(theta)
            updates, _ = tx.update(grads, tx.init(theta), theta, grad_fn=recording_grad_fn)
            return updates, seen, optim.sam_perturbation(grads, theta, rho)

        updates, seen, perturbation = jax.device_get(step(theta, ETA, RHO))
    th = _flat(theta)
    g = A @ th
    eps = RHO * g / np.linalg.norm(g)
    # The gradient is taken exactly once, at θ + ρ g/‖g‖ (the global norm over all leaves).
    assert len(seen) == 1
    np.testing.assert_allclose(_flat(seen[0]), th + eps, rtol=1e-12)
    np.testing.assert_allclose(_flat(perturbation), eps, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(eps), RHO, rtol=1e-12)
    # Base SGD on the SAM gradient; coupled decay acts on the unperturbed θ.
    expected = -ETA * (A @ (th + eps) + weight_decay * th)
    np.testing.assert_allclose(_flat(updates), expected, rtol=1e-12)


@pytest.mark.parametrize("adaptive_eta", [0.0, 0.01])
def test_asam_perturbation_is_the_scaled_ascent_direction(adaptive_eta):
    """ASAM: ε = ρ T² g / ‖T g‖ with T = |θ| + η_A, which has ‖T⁻¹ε‖ = ρ."""
    A, theta = _problem(1)
    with jax.enable_x64(True):
        grad_fn = jax.grad(_loss(A))

        @jax.jit
        def step(theta, rho, adaptive_eta):
            tx = optim.sam(ETA, rho=rho, adaptive=True, adaptive_eta=adaptive_eta)
            updates, _ = tx.update(grad_fn(theta), tx.init(theta), theta, grad_fn=grad_fn)
            return updates, optim.sam_perturbation(grad_fn(theta), theta, rho, adaptive=True, adaptive_eta=adaptive_eta)

        updates, eps = jax.device_get(step(theta, RHO, adaptive_eta))
        eps = _flat(eps)
    th = _flat(theta)
    g, T = A @ th, np.abs(th) + adaptive_eta
    expected_eps = RHO * T**2 * g / np.linalg.norm(T * g)
    np.testing.assert_allclose(eps, expected_eps, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(eps / T), RHO, rtol=1e-12)
    np.testing.assert_allclose(_flat(updates), -ETA * A @ (th + expected_eps), rtol=1e-12)


def test_sam_with_momentum_base_keeps_the_base_state():
    """Two steps of SAM(momentum β): v_t = β v_{t−1} + g_SAM(θ_t), θ_{t+1} = θ_t − η v_t."""
    A, theta = _problem(2)
    beta = 0.8
    with jax.enable_x64(True):
        grad_fn = jax.grad(_loss(A))

        @jax.jit
        def two_steps(params):
            tx = optim.sam(ETA, rho=RHO, base="momentum", momentum=beta)
            state = tx.init(params)
            for _ in range(2):
                updates, state = tx.update(grad_fn(params), state, params, grad_fn=grad_fn)
                params = optax.apply_updates(params, updates)
            return params, state

        params, state = jax.device_get(two_steps(theta))
    th, v = _flat(theta), np.zeros(5)
    for _ in range(2):
        g = A @ th
        v = beta * v + A @ (th + RHO * g / np.linalg.norm(g))
        th = th - ETA * v
    np.testing.assert_allclose(_flat(params), th, rtol=1e-12)
    np.testing.assert_allclose(_flat(optax.tree.get(state, "trace")), v, rtol=1e-12)


def test_sam_at_a_stationary_point_does_not_perturb():
    """g = 0: ε = 0 (not NaN), so SAM stays at the minimum."""
    A, theta = _problem()
    zero = jax.tree.map(np.zeros_like, theta)

    @jax.jit
    def step(params):
        tx = optim.sam(ETA, rho=RHO)
        return tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params, grad_fn=jax.grad(_loss(A)))[0]

    assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(step(zero)))


def test_sam_errors_are_clear():
    A, theta = _problem()
    tx = optim.sam(ETA)
    grads = jax.grad(_loss(A))(theta)
    with pytest.raises(ValueError, match="grad_fn"):
        tx.update(grads, tx.init(theta), theta)
    with pytest.raises(ValueError, match="params"):
        tx.update(grads, tx.init(theta), None, grad_fn=jax.grad(_loss(A)))
    with pytest.raises(ValueError, match="valid:.*'adam'"):
        optim.sam(ETA, base="lion")
    with pytest.raises(ValueError, match="valid:"):
        optim.sam(ETA, base="sam")


def test_sam_in_a_vmapped_sweep_equals_per_run_results():
    """The engine's pattern: per-run hyperparameters (η, ρ) and a per-run minibatch closed over by
    grad_fn, the rule rebuilt inside the jitted, vmapped step. Three SAM steps per run; the
    vmapped runs must equal runs done one at a time (tolerance 1e-6 relative: float32, same ops)."""
    rng = np.random.default_rng(4)
    runs = 4
    x = rng.normal(size=(runs, 16, 3)).astype(np.float32)  # per-run batches
    y = rng.normal(size=(runs, 16)).astype(np.float32)
    etas = np.array([0.01, 0.05, 0.1, 0.2], np.float32)
    rhos = np.array([0.0, 0.05, 0.1, 0.5], np.float32)
    theta0 = {"w": np.ones(3, np.float32), "b": np.zeros((), np.float32)}

    def train(eta, rho, x, y):
        def loss(theta):
            return jnp.mean((x @ theta["w"] + theta["b"] - y) ** 2)

        grad_fn = jax.grad(loss)
        trajectories = {}
        for name, build in [("sam", lambda: optim.sam(eta, rho=rho, base="adam")), ("adam", lambda: optim.adam(eta))]:
            state, theta = build().init(theta0), theta0
            for _ in range(3):
                tx = build()  # rebuilt every step with the traced per-run values, as in the engine
                updates, state = tx.update(grad_fn(theta), state, theta, grad_fn=grad_fn)
                theta = optax.apply_updates(theta, updates)
            trajectories[name] = theta
        return trajectories

    # Small programs run once: skip LLVM's optimisation passes (compile time dominates).
    fast_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
    swept = fast_jit(jax.vmap(train))(etas, rhos, x, y)
    one_at_a_time = fast_jit(train)
    for r in range(runs):
        single = one_at_a_time(etas[r], rhos[r], x[r], y[r])
        for leaf_swept, leaf_single in zip(jax.tree.leaves(swept), jax.tree.leaves(single)):
            np.testing.assert_allclose(leaf_swept[r], leaf_single, rtol=1e-6, atol=1e-7)
    # ρ = 0 is plain Adam (same ops: ε = 0 exactly), ρ > 0 is not.
    for leaf in ("w", "b"):
        np.testing.assert_array_equal(swept["sam"][leaf][0], swept["adam"][leaf][0])
    assert np.all(np.abs(swept["sam"]["w"][1:] - swept["adam"]["w"][1:]) > 1e-6)
