"""Adam's preconditioner (read from optax states) and preconditioned sharpness on a quadratic."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import dl_course.measures as M
import dl_course.optim as dl_optim


def test_preconditioned_sharpness_of_quadratic_and_adam_preconditioner():
    rng = np.random.default_rng(0)
    b = rng.standard_normal((7, 7))
    h = b @ b.T / 7
    center = rng.standard_normal(7)
    params = {"w": jnp.asarray(rng.standard_normal((2, 3))), "b": jnp.asarray(rng.standard_normal(1))}
    flat0, unravel = ravel_pytree(params)

    def loss(p):
        r = ravel_pytree(p)[0] - center
        return 0.5 * r @ jnp.asarray(h) @ r

    lr, b1, b2, eps = 0.1, 0.9, 0.99, 1e-3  # large eps so that it visibly enters P
    tx = optax.adam(lr, b1=b1, b2=b2, eps=eps)  # a chain: (ScaleByAdamState, EmptyState)

    @jax.jit
    def run(params, key):
        state = tx.init(params)
        p0 = M.adam_preconditioner(state, b1, b2, eps)
        for _ in range(3):
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            params = optax.apply_updates(params, updates)
        grads = jax.grad(loss)(params)
        updates, _ = tx.update(grads, state, params)
        precond = M.adam_preconditioner(state, b1, b2, eps)
        res = M.preconditioned_sharpness(loss, params, precond, 2, key=key, num_iters=7)
        return p0, state, updates, grads, precond, res

    p0, state, updates, grads, precond, res = run(params, jax.random.key(0))
    assert np.all(np.isnan(ravel_pytree(p0)[0]))  # no preconditioner before the first step

    # Definition check: Adam's next update is exactly −η P⁻¹ m with m the updated first moment
    # (the state after this step) and P = (1 − β1ᵗ)(√(ν/(1 − β2ᵗ)) + ε) at t = count + 1.
    adam_state = M.find_adam_state(state)
    t = int(adam_state.count) + 1
    g = np.asarray(ravel_pytree(grads)[0])
    mu = b1 * np.asarray(ravel_pytree(adam_state.mu)[0]) + (1 - b1) * g
    nu = b2 * np.asarray(ravel_pytree(adam_state.nu)[0]) + (1 - b2) * g**2
    p_next = (1 - b1**t) * (np.sqrt(nu / (1 - b2**t)) + eps)
    np.testing.assert_allclose(ravel_pytree(updates)[0], -lr * mu / p_next, rtol=1e-12)
    # ... and the state's own P (t = count = 3) follows the same formula.
    t = int(adam_state.count)
    nu_t = np.asarray(ravel_pytree(adam_state.nu)[0])
    p_t = (1 - b1**t) * (np.sqrt(nu_t / (1 - b2**t)) + eps)
    np.testing.assert_allclose(ravel_pytree(precond)[0], p_t, rtol=1e-12)

    # Preconditioned sharpness = top eigenvalues of P^{-1/2} H P^{-1/2} = those of P⁻¹H.
    s = np.diag(1 / np.sqrt(p_t))
    expected = np.linalg.eigvalsh(s @ h @ s)[::-1][:2]
    np.testing.assert_allclose(res.eigenvalues, expected, rtol=1e-10)
    np.testing.assert_allclose(
        np.sort(np.linalg.eigvals(np.diag(1 / p_t) @ h).real)[::-1][:2], expected, rtol=1e-10
    )


def test_find_adam_state_rejects_states_without_second_moments():
    params = {"w": jnp.zeros(3)}
    with pytest.raises(ValueError, match="no Adam state"):
        M.find_adam_state(optax.sgd(0.1, momentum=0.9).init(params))
    state = optax.chain(optax.clip(1.0), optax.scale_by_adam()).init(params)
    assert isinstance(M.find_adam_state(state), optax.ScaleByAdamState)
    # The project's own Adam (the engine's optimizers) keeps the same fields.
    assert isinstance(M.find_adam_state(dl_optim.adam(0.1).init(params)), dl_optim.AdamState)


def test_stability_thresholds():
    np.testing.assert_allclose(M.gd_stability_threshold(0.01), 200.0)
    np.testing.assert_allclose(M.gd_stability_threshold(0.01, momentum=0.9), 380.0)
    np.testing.assert_allclose(M.adam_stability_threshold(0.01, b1=0.9), 3800.0)  # 38/η
