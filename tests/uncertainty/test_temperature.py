"""Temperature scaling: recovers a known temperature; never increases validation NLL."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize_scalar

from dl_course.uncertainty.temperature import apply_temperature, fit_temperature, scaled_nll

fit = jax.jit(fit_temperature)


def _synthetic(seed, n, k, t_true, spread=3.0):
    """Logits z and labels y ~ Categorical(softmax(z / T_true)): the calibrated T is T_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, spread, (n, k))
    p = np.exp(z / t_true) / np.exp(z / t_true).sum(1, keepdims=True)
    y = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    return z, y


def test_recovers_known_temperature(x64):
    t_true = 2.5
    z, y = _synthetic(0, 20000, 10, t_true)
    result = fit(jnp.asarray(z), jnp.asarray(y))
    # β̂ = 1/T̂ is the MLE of a one-parameter exponential family; its standard error is
    # 1/sqrt(N · I(β)) with Fisher information I(β) = mean_i Var_{softmax(β z_i)}[z_i].
    beta = 1.0 / t_true
    p = np.exp(beta * z) / np.exp(beta * z).sum(1, keepdims=True)
    info = np.mean(np.sum(p * z**2, 1) - np.sum(p * z, 1) ** 2)
    se = 1.0 / np.sqrt(len(y) * info)
    assert abs(1.0 / float(result.temperature) - beta) < 4 * se
    # Same optimum as a generic bounded scalar minimiser of the NLL over log T.
    ref = minimize_scalar(lambda log_t: float(scaled_nll(jnp.asarray(z), jnp.asarray(y), np.exp(log_t))),
                          bounds=(np.log(0.01), np.log(100.0)), method="bounded", options={"xatol": 1e-8})
    np.testing.assert_allclose(float(result.temperature), np.exp(ref.x), rtol=1e-5)
    assert float(result.nll_after) < float(result.nll_before)


def test_never_increases_validation_nll_and_vmaps():
    # Eight problems, one fitted temperature each under vmap: overconfident, underconfident,
    # calibrated, and logits unrelated to the labels (optimum at the T → ∞ end of the bracket).
    problems = [_synthetic(s, 500, 5, t) for s, t in enumerate([0.3, 0.5, 1.0, 1.0, 2.0, 4.0, 8.0, 1.0])]
    z = np.stack([p[0] for p in problems]).astype(np.float32)
    y = np.stack([p[1] for p in problems])
    y[-1] = np.random.default_rng(9).integers(0, 5, 500)  # labels independent of the logits
    batched = jax.jit(jax.vmap(fit_temperature))(jnp.asarray(z), jnp.asarray(y))
    assert np.all(np.asarray(batched.nll_after) <= np.asarray(batched.nll_before))
    nll_at_fit = jax.vmap(scaled_nll)(jnp.asarray(z), jnp.asarray(y), batched.temperature)
    np.testing.assert_allclose(nll_at_fit, batched.nll_after, rtol=1e-6)
    assert float(batched.temperature[-1]) > 50.0  # uninformative logits: flatten them
    single = fit(jnp.asarray(z[0]), jnp.asarray(y[0]))
    np.testing.assert_allclose(batched.temperature[0], single.temperature, rtol=1e-5)
    # Accuracy is untouched (T > 0 keeps the argmax).
    scaled = apply_temperature(jnp.asarray(z[0]), batched.temperature[0])
    np.testing.assert_array_equal(np.argmax(scaled, -1), np.argmax(z[0], -1))
