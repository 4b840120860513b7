"""Closed-form GLM moments of a one-layer K-FAC Laplace against the generic Jacobian route
(``function_moments``), float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.models.mlp import MLP
from dl_course.uncertainty import laplace as L
from dl_course.uncertainty import laplace_kron_moments as KM
from dl_course.uncertainty import laplace_predictives as LP

from .conftest import init_variables


def _problem():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((20, 4)))
    y = jnp.asarray(rng.integers(0, 3, size=20))
    model = MLP(width=6, depth=2, num_outputs=3)
    params = jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), init_variables(model, x, seed=1)["params"])
    return model, params, x, y


@pytest.mark.usefixtures("x64")
def test_closed_form_moments_equal_the_jacobian_route_for_last_and_inner_layers():
    model, params, x, y = _problem()
    # Dense_2 is the read-out (D = I); Dense_0 is the first layer, so D = ∂f/∂s runs through two
    # ReLUs and two layers: a missing or transposed D would show there.
    for subset in ("Dense_2", "Dense_0"):
        for structure in ("kfac", "ekfac"):
            la = L.fit_laplace(model, params, x, y, structure=structure, subset=subset, prior_precision=0.7)
            assert KM.applies(la, model, x)
            mu, s = KM.kfac_layer_function_moments(la, model, x, batch_size=7)
            mu_ref, s_ref = LP.function_moments(la, model, x)
            # Same sums in a different order in float64: agreement to ~1e-14; 1e-10 leaves margin.
            np.testing.assert_allclose(mu, mu_ref, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(s, s_ref, rtol=1e-10, atol=1e-12)
            assert float(jnp.min(jnp.linalg.eigvalsh(s))) > -1e-12  # a covariance per input


@pytest.mark.usefixtures("x64")
def test_closed_form_moments_vmapped_over_runs_and_coverage():
    model, params, x, y = _problem()
    _, params2, _, _ = _problem()
    params2 = jax.tree_util.tree_map(lambda v: 1.3 * v, params2)
    stacked_params = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), params, params2)
    fit = lambda p: L.optimize_prior_precision(L.fit_laplace(model, p, x, y, subset="last_layer"))
    stacked = jax.vmap(fit)(stacked_params)
    mu, s = jax.vmap(lambda la: KM.kfac_layer_function_moments(la, model, x))(stacked)
    for r, p in enumerate((params, params2)):
        mu_r, s_r = KM.kfac_layer_function_moments(fit(p), model, x)
        np.testing.assert_allclose(mu[r], mu_r, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(s[r], s_r, rtol=1e-10, atol=1e-12)
    # Not covered: diagonal curvature, K-FAC over all layers (the generic route handles them).
    assert not KM.applies(L.fit_laplace(model, params, x, y, structure="diag", subset="last_layer"), model, x)
    la_all = L.fit_laplace(model, params, x, y, structure="kfac")
    assert not KM.applies(la_all, model, x)
    with pytest.raises(ValueError, match="one Dense layer"):
        KM.kfac_layer_function_moments(la_all, model, x)
