"""Jiang et al. (2020) norm/margin measures against independent numpy computations (float64, see
conftest): closed-form path norm, numpy SVDs, closed-form Fisher–Rao norms."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import dl_course.measures as M

RNG = np.random.default_rng(7)


def _relu_net():
    p = {"w0": RNG.standard_normal((3, 5)), "b0": RNG.standard_normal(5),
         "w1": RNG.standard_normal((5, 2)), "b1": RNG.standard_normal(2)}
    return {k: jnp.asarray(v) for k, v in p.items()}


def _relu_apply(p, x):
    return jax.nn.relu(x @ p["w0"] + p["b0"]) @ p["w1"] + p["b1"]


def test_path_norm_of_one_hidden_layer_relu_net_in_closed_form():
    p = _relu_net()
    w0, b0, w1, b1 = (np.asarray(p[k]) for k in ("w0", "b0", "w1", "b1"))
    # Σ_paths Π w²: input i -> hidden j -> output k, plus paths starting at b0_j and at b1_k.
    per_hidden = np.sum(w0**2, axis=0) + b0**2          # Σ_i w0_ij² + b0_j²
    closed = np.sum(per_hidden @ (w1**2)) + np.sum(b1**2)
    # Exact up to rounding (a handful of float64 products and sums).
    np.testing.assert_allclose(M.path_norm_sq(_relu_apply, p, (3,)), closed, rtol=1e-12)
    gamma = 0.37
    np.testing.assert_allclose(M.path_norm_over_margin(_relu_apply, p, (3,), gamma), closed / gamma**2, rtol=1e-12)


def test_spectral_and_frobenius_measures_against_numpy_svd():
    params = {"conv": jnp.asarray(RNG.standard_normal((3, 2, 4))),   # (k, c_in, c_out) -> (6, 4)
              "dense": jnp.asarray(RNG.standard_normal((4, 7))),
              "out": jnp.asarray(RNG.standard_normal((7, 3))),
              "bias": jnp.asarray(RNG.standard_normal(3))}
    init = jax.tree_util.tree_map(lambda v: v + 0.3 * jnp.asarray(RNG.standard_normal(v.shape)), params)
    mats = [np.asarray(params[k]).reshape(-1, params[k].shape[-1]) for k in sorted(params) if params[k].ndim >= 2]
    mats0 = [np.asarray(init[k]).reshape(-1, init[k].shape[-1]) for k in sorted(init) if init[k].ndim >= 2]
    spec = np.array([np.linalg.svd(w, compute_uv=False)[0] ** 2 for w in mats])
    fro = np.array([np.sum(w**2) for w in mats])
    dspec = np.array([np.linalg.svd(w - w0, compute_uv=False)[0] ** 2 for w, w0 in zip(mats, mats0)])
    dfro = np.array([np.sum((w - w0) ** 2) for w, w0 in zip(mats, mats0)])
    d, g = 3, 0.8
    nrm = M.layer_norms(params, init)
    expected = {
        "log_prod_of_spec": (M.log_prod_of_spec(nrm), np.log(np.prod(spec))),
        "log_prod_of_spec_over_margin": (M.log_prod_of_spec_over_margin(nrm, g), np.log(np.prod(spec) / g**2)),
        "log_sum_of_spec": (M.log_sum_of_spec(nrm), np.log(d * np.prod(spec) ** (1 / d))),
        "log_sum_of_spec_over_margin": (M.log_sum_of_spec_over_margin(nrm, g),
                                        np.log(d * (np.prod(spec) / g**2) ** (1 / d))),
        "fro_over_spec": (M.fro_over_spec(nrm), np.sum(fro / spec)),
        "log_spec_init_main": (M.log_spec_init_main(nrm, g), np.log(np.prod(spec) / g**2 * np.sum(dfro / spec))),
        "log_spec_orig_main": (M.log_spec_orig_main(nrm, g), np.log(np.prod(spec) / g**2 * np.sum(fro / spec))),
        "dist_spec_init": (M.dist_spec_init(nrm), np.sum(dspec)),
        "log_prod_of_fro": (M.log_prod_of_fro(nrm), np.log(np.prod(fro))),
        "log_prod_of_fro_over_margin": (M.log_prod_of_fro_over_margin(nrm, g), np.log(np.prod(fro) / g**2)),
        "log_sum_of_fro": (M.log_sum_of_fro(nrm), np.log(d * np.prod(fro) ** (1 / d))),
        "log_sum_of_fro_over_margin": (M.log_sum_of_fro_over_margin(nrm, g),
                                       np.log(d * (np.prod(fro) / g**2) ** (1 / d))),
        "fro_dist": (M.fro_dist(nrm), np.sum(dfro)),
        "param_norm": (M.param_norm(nrm), np.sum(fro)),
        "inverse_margin": (M.inverse_margin(g), 1 / g**2),
    }
    for name, (got, ref) in expected.items():
        # Two LAPACK SVDs of the same matrices (numpy's, via dl_course.linalg, vs numpy's here):
        # agreement to float64 rounding.
        np.testing.assert_allclose(got, ref, rtol=1e-10, err_msg=name)
    assert M.num_parameters(params) == 24 + 28 + 21 + 3
    # The distance measures need the initialization.
    with pytest.raises(ValueError, match="init"):
        M.fro_dist(M.layer_norms(params))


def test_output_margin_is_the_quantile_of_multiclass_margins():
    logits = RNG.standard_normal((50, 4))
    y = RNG.integers(0, 4, 50)
    correct = logits[np.arange(50), y]
    masked = logits.copy()
    masked[np.arange(50), y] = -np.inf
    margins = correct - masked.max(axis=1)
    for q in (0.1, 0.5):
        np.testing.assert_allclose(M.output_margin(jnp.asarray(logits), jnp.asarray(y), q),
                                   np.quantile(margins, q), rtol=1e-12)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_fisher_rao_norm_of_linear_model_in_closed_form():
    # f(x) = W x + b, softmax cross-entropy: ∇_{W,b} ℓ = ((p − e_y) xᵀ, p − e_y), so
    # ⟨θ, ∇_θ ℓ⟩ = (p − e_y)ᵀ (W x + b) = (p − e_y)ᵀ f(x).
    x, y = RNG.standard_normal((30, 4)), RNG.integers(0, 3, 30)
    p = {"w": jnp.asarray(RNG.standard_normal((4, 3))), "b": jnp.asarray(RNG.standard_normal(3))}
    f = x @ np.asarray(p["w"]) + np.asarray(p["b"])
    r = _softmax(f) - np.eye(3)[y]
    closed = np.mean(np.sum(r * f, axis=1) ** 2)

    def losses(q):
        return optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(x) @ q["w"] + q["b"], jnp.asarray(y))

    np.testing.assert_allclose(M.fisher_rao_norm(losses, p), closed, rtol=1e-12)
    np.testing.assert_allclose(M.fisher_rao_norm(losses, p, num_layers=1), 4 * closed, rtol=1e-12)


def test_fisher_rao_norm_of_bias_free_relu_net_uses_homogeneity():
    # A bias-free 1-hidden-layer ReLU net is 2-homogeneous in θ: ⟨θ, ∇_θ ℓ⟩ = 2 ⟨∂ℓ/∂f, f⟩
    # (Liang et al. 2019, Lemma 2.1), so ‖θ‖_fr² = 4 mean_i ((p_i − e_{y_i})ᵀ f_i)².
    x, y = RNG.standard_normal((25, 3)), RNG.integers(0, 2, 25)
    p = {"w0": jnp.asarray(RNG.standard_normal((3, 6))), "w1": jnp.asarray(RNG.standard_normal((6, 2)))}
    apply = lambda q, xx: jax.nn.relu(xx @ q["w0"]) @ q["w1"]  # noqa: E731
    f = np.asarray(apply(p, jnp.asarray(x)))
    closed = 4 * np.mean(np.sum((_softmax(f) - np.eye(2)[y]) * f, axis=1) ** 2)
    losses = lambda q: optax.softmax_cross_entropy_with_integer_labels(apply(q, jnp.asarray(x)), jnp.asarray(y))  # noqa: E731
    np.testing.assert_allclose(M.fisher_rao_norm(losses, p), closed, rtol=1e-10)
