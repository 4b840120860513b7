"""Curvature-vector products against dense float64 matrices (jax.hessian / jax.jacobian)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from dl_course.measures.curvature import products as C

# Products and dense matrices are computed in float64 from the same function; they differ only by
# summation order, so agreement to 1e-10 relative (vs. eps = 2e-16) is a strict check.
RTOL = 1e-10


def _flat(t):
    return np.asarray(ravel_pytree(t)[0])


def _dense_jacobian(f, tiny):
    """Jacobian of a vector/matrix-valued function of the flat parameters, as (outputs, d)."""
    jac = jax.jit(jax.jacobian(lambda v: f(tiny.unravel(v))))(tiny.flat)
    return np.asarray(jac).reshape(-1, tiny.dim)


@pytest.fixture(scope="module")
def v(tiny):
    with jax.enable_x64(True):
        return tiny.unravel(jnp.asarray(np.random.default_rng(7).standard_normal(tiny.dim)))


def test_hvp_equals_dense_hessian_times_v(tiny, v):
    got = _flat(jax.jit(C.hvp, static_argnums=0)(tiny.loss, tiny.params, v))
    np.testing.assert_allclose(got, tiny.hessian @ _flat(v), rtol=RTOL, atol=1e-14)


def test_ggn_equals_dense_jt_hout_j(tiny, v):
    logits_fn = lambda p: tiny.apply(p, tiny.x)  # noqa: E731
    n, c = 20, 3
    jac = _dense_jacobian(logits_fn, tiny)  # (n*c, d), row-major over (example, class)
    probs = np.asarray(jax.jit(lambda p: jax.nn.softmax(logits_fn(p)))(tiny.params))
    h_out = np.zeros((n * c, n * c))
    for i in range(n):  # block diagonal (diag p − p pᵀ)/n: output Hessian of the mean CE
        h_out[i * c:(i + 1) * c, i * c:(i + 1) * c] = (np.diag(probs[i]) - np.outer(probs[i], probs[i])) / n
    expected = jac.T @ h_out @ jac @ _flat(v)

    def ce_of_logits(z):
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), tiny.y[:, None], axis=1))

    @jax.jit
    def products(params, v):
        return (
            C.cross_entropy_ggn_vp(logits_fn, params, v),
            C.ggn_vp(logits_fn, ce_of_logits, params, v),
            C.mse_ggn_vp(logits_fn, params, v),
            C.ggn_vp(logits_fn, lambda z: jnp.mean(0.5 * jnp.sum((z - 1.0) ** 2, -1)), params, v),
        )

    closed_ce, generic_ce, closed_mse, generic_mse = map(_flat, products(tiny.params, v))
    np.testing.assert_allclose(closed_ce, expected, rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(generic_ce, expected, rtol=RTOL, atol=1e-14)
    expected_mse = jac.T @ jac @ _flat(v) / n  # output Hessian of (1/n) Σ ½‖f_i − y_i‖²: I/n
    np.testing.assert_allclose(closed_mse, expected_mse, rtol=RTOL)
    np.testing.assert_allclose(generic_mse, expected_mse, rtol=RTOL)
    # The GGN is PSD and differs from the Hessian (the dropped term is non-zero away from a fit).
    ggn = jac.T @ h_out @ jac
    assert np.linalg.eigvalsh(ggn).min() > -1e-12
    assert not np.allclose(ggn, tiny.hessian, atol=1e-3)


def test_empirical_fisher_equals_mean_outer_product_of_example_gradients(tiny, v):
    f = lambda p: tiny.example_losses(p, tiny.x, tiny.y)  # noqa: E731
    g = _dense_jacobian(f, tiny)  # (n, d) per-example gradients
    expected = (g.T @ g / g.shape[0]) @ _flat(v)
    got = _flat(jax.jit(C.empirical_fisher_vp, static_argnums=0)(f, tiny.params, v))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=1e-14)


def test_dataset_operators_do_not_depend_on_batch_split(tiny, v):
    data = {"x": tiny.x, "y": tiny.y}
    apply_fn = tiny.apply
    batch_loss = lambda p, b: tiny.mean_loss(p, b["x"], b["y"])  # noqa: E731
    batch_losses = lambda p, b: tiny.example_losses(p, b["x"], b["y"])  # noqa: E731

    logits_fn = lambda p: apply_fn(p, tiny.x)  # noqa: E731

    @jax.jit
    def all_ops(p, v):
        full = [
            C.hvp(tiny.loss, p, v),
            C.cross_entropy_ggn_vp(logits_fn, p, v),
            C.mse_ggn_vp(logits_fn, p, v),
            C.empirical_fisher_vp(lambda q: batch_losses(q, data), p, v),
        ]
        # 20 examples split unevenly (7 + 7 + 6) for every operator, and evenly (4 × 5) and as
        # one batch for the Hessian (the batching logic is shared).
        split = [
            C.dataset_hvp(batch_loss, p, v, data, 7),
            C.dataset_ggn_vp(apply_fn, p, v, data, 7, "cross_entropy"),
            C.dataset_ggn_vp(apply_fn, p, v, data, 7, "mse"),
            C.dataset_fisher_vp(batch_losses, p, v, data, 7),
        ]
        hvps = [C.dataset_hvp(batch_loss, p, v, data, bs) for bs in (5, 20)]
        return full, split, hvps

    full, split, hvps = all_ops(tiny.params, v)
    for got, ref in zip(split + hvps, full + [full[0], full[0]]):
        np.testing.assert_allclose(_flat(got), _flat(ref), rtol=RTOL, atol=1e-14)
    with pytest.raises(ValueError):
        C.dataset_mean(lambda b: b["x"].mean(), data, 0)


def test_hessian_operator_methods_equal_dense_hessian_under_vmap_over_runs_and_vectors(tiny):
    """Both HVP methods (linearize once / forward-over-reverse per product), vmapped over 2 runs
    of params and applied to 3 vectors at each point (the linearization reused), equal the dense
    float64 Hessian of each run times each vector."""
    params = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), tiny.params, tiny.init(1))
    vs = jnp.asarray(np.random.default_rng(3).standard_normal((3, tiny.dim)))

    def products(p, method):
        op = C.hessian_vector_operator(tiny.loss, p, method)
        return jax.lax.map(lambda x: ravel_pytree(op(tiny.unravel(x)))[0], vs)  # a loop, as Lanczos

    dense = jax.vmap(jax.hessian(lambda f: tiny.loss(tiny.unravel(f))))(jax.vmap(lambda p: ravel_pytree(p)[0])(params))
    for method in sorted(C.HVP_METHODS):
        got = jax.jit(jax.vmap(lambda p: products(p, method)))(params)
        assert got.shape == (2, 3, tiny.dim)
        for r in range(2):
            np.testing.assert_allclose(got[r], vs @ np.asarray(dense[r]), rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(dense[0], tiny.hessian, rtol=RTOL, atol=1e-14)
    assert not np.allclose(dense[0], dense[1])  # two different runs
    with pytest.raises(ValueError, match="forward_over_reverse"):
        C.hessian_vector_operator(tiny.loss, tiny.params, "reverse_over_reverse")
