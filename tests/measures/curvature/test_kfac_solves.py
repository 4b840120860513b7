"""K-FAC factors against their definition and closed forms; K-FAC and CG inverse-curvature solves
against dense solves. float64 throughout (the measures conftest enables it)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import dl_course.measures as M
from dl_course.measures.curvature.kfac_conv import conv_patches
from dl_course.models.mlp import MLP


def init(model, x, seed):
    """float64 params from numpy draws (kernels N(0, 1/fan_in), biases N(0, 0.3²))."""
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    rng = np.random.default_rng(seed)
    def draw(s):
        if len(s.shape) == 2:
            return jnp.asarray(rng.standard_normal(s.shape) / np.sqrt(s.shape[0]))
        return jnp.asarray(0.3 * rng.standard_normal(s.shape))

    return jax.tree_util.tree_map(draw, shapes)


def problem(n=6, seed=0, activation="tanh", widths=(4,), outputs=3):
    model = MLP(widths=widths, num_outputs=outputs, activation=activation)
    rng = np.random.default_rng(seed + 100)
    x = jnp.asarray(rng.standard_normal((n, 5)))
    y = jnp.asarray(rng.integers(0, outputs, n), jnp.int32)
    return model, init(model, x, seed), x, y


def homog(a):
    return np.concatenate([a, np.ones((a.shape[0], 1))], axis=1)


def dense(op, tree):
    flat, unravel = ravel_pytree(tree)
    return np.asarray(jax.jit(jax.vmap(lambda e: ravel_pytree(op(unravel(e)))[0]))(jnp.eye(flat.shape[0]))).T


def test_kfac_factors_equal_their_definition_on_a_batch():
    model, params, x, y = problem()
    w0, b0 = params["Dense_0"]["kernel"], params["Dense_0"]["bias"]
    w1, b1 = params["Dense_1"]["kernel"], params["Dense_1"]["bias"]
    s0 = x @ w0 + b0
    a1 = jnp.tanh(s0)
    f = a1 @ w1 + b1
    p = jax.nn.softmax(f)
    # Per-example Jacobians of the outputs w.r.t. each layer's pre-activation, by autodiff of the
    # network written out by hand: J0[n] = ∂f_n/∂s0_n (3×4), J1[n] = I.
    j0 = jax.vmap(jax.jacobian(lambda s: jnp.tanh(s) @ w1 + b1))(s0)
    j1 = jnp.broadcast_to(jnp.eye(3), (6, 3, 3))
    lam = {
        "cross_entropy": jax.vmap(lambda q: jnp.diag(q) - jnp.outer(q, q))(p),
        "mse": jnp.broadcast_to(jnp.eye(3), (6, 3, 3)),
    }
    r = p - jax.nn.one_hot(y, 3)
    for loss in ("cross_entropy", "mse"):
        fac = M.kfac_factors(model, params, x, loss=loss)
        np.testing.assert_allclose(fac.A["Dense_0"], homog(np.asarray(x)).T @ homog(np.asarray(x)) / 6, rtol=1e-12)
        np.testing.assert_allclose(fac.A["Dense_1"], homog(np.asarray(a1)).T @ homog(np.asarray(a1)) / 6, rtol=1e-12)
        for name, j in (("Dense_0", j0), ("Dense_1", j1)):
            ref = jnp.mean(jnp.einsum("nki,nkl,nlj->nij", j, lam[loss], j), axis=0)
            np.testing.assert_allclose(fac.G[name], ref, rtol=1e-10, atol=1e-14)
    # Empirical Fisher: G = (1/N) Σ J^T r r^T J with r = p − onehot(y); batched (4 does not divide
    # 6) equals full batch.
    fac = M.kfac_factors(model, params, x, y, fisher="empirical", batch_size=4)
    ref = jnp.mean(jnp.einsum("nki,nk,nl,nlj->nij", j0, r, r, j0), axis=0)
    np.testing.assert_allclose(fac.G["Dense_0"], ref, rtol=1e-10, atol=1e-14)
    # MC Fisher: unbiased for the GGN factor; 2000 sampled targets per example (40 keys × 50
    # copies of the batch) bring the mean within 5 % of its largest entry.
    xs = jnp.tile(x, (50, 1))
    mc = jax.vmap(lambda k: M.kfac_factors(model, params, xs, loss="cross_entropy", fisher="mc", key=k).G["Dense_1"])(
        jax.random.split(jax.random.key(0), 40))
    ggn = M.kfac_factors(model, params, x).G["Dense_1"]
    np.testing.assert_allclose(jnp.mean(mc, axis=0), ggn, atol=0.05 * np.abs(ggn).max())
    with pytest.raises(ValueError, match="valid"):
        M.kfac_factors(model, params, x, loss="hinge")


def test_kfac_is_exact_for_one_example_and_deep_linear_closed_form():
    # Deep linear network, MSE, one example: A_l = ã ãᵀ, G_l = M_l M_lᵀ with M_l the product of the
    # later kernels, and each K-FAC block equals the GGN's diagonal block.
    model, params, x, _ = problem(n=1, activation="identity", widths=(4, 3), outputs=2)
    w = [params[f"Dense_{i}"]["kernel"] for i in range(3)]
    b = [params[f"Dense_{i}"]["bias"] for i in range(3)]
    a = [np.asarray(x)]
    for i in range(2):
        a.append(a[-1] @ w[i] + b[i])
    mats = [w[1] @ w[2], w[2], np.eye(2)]
    fac = M.kfac_factors(model, params, x, loss="mse")
    for i in range(3):
        np.testing.assert_allclose(fac.A[f"Dense_{i}"], homog(a[i]).T @ homog(a[i]), rtol=1e-12)
        np.testing.assert_allclose(fac.G[f"Dense_{i}"], mats[i] @ mats[i].T, rtol=1e-10, atol=1e-14)
    for act, loss in (("identity", "mse"), ("tanh", "cross_entropy")):
        model, params, x, _ = problem(n=1, activation=act, widths=(4, 3), outputs=2)
        fac = M.kfac_factors(model, params, x, loss=loss)
        out = lambda p: model.apply({"params": p}, x)  # noqa: E731
        ggn_vp = M.mse_ggn_vp if loss == "mse" else M.cross_entropy_ggn_vp
        g_dense = dense(lambda v: ggn_vp(out, params, v), params)
        k_dense = dense(M.kfac_operator(fac), params)
        sizes = [sum(t.size for t in jax.tree_util.tree_leaves(params[f"Dense_{i}"])) for i in range(3)]
        cuts = np.cumsum([0] + sizes)
        for i in range(3):
            blk = slice(cuts[i], cuts[i + 1])
            np.testing.assert_allclose(k_dense[blk, blk], g_dense[blk, blk], rtol=1e-9, atol=1e-13)
        # Block-diagonal: the off-diagonal blocks of K-FAC are zero (but not those of the GGN).
        assert np.all(k_dense[: cuts[1], cuts[1]:] == 0) and np.abs(g_dense[: cuts[1], cuts[1]:]).max() > 1e-3


def test_kfac_eigendecomposition_and_inverse_against_dense():
    model, params, x, _ = problem(n=8)
    fac = M.kfac_factors(model, params, x)
    eig = M.kfac_eigen(fac)
    k_dense = dense(M.kfac_operator(fac, scale=8.0), params)
    lams = np.sort(np.concatenate([np.ravel(v) for v in M.kfac_eigenvalues(eig, scale=8.0).values()]))
    np.testing.assert_allclose(lams, np.linalg.eigvalsh(k_dense), rtol=1e-9, atol=1e-12)
    v = jax.tree_util.tree_map(lambda t: jnp.cos(jnp.arange(t.size, dtype=t.dtype).reshape(t.shape)), params)
    got = ravel_pytree(M.kfac_solve(eig, v, damping=0.1, scale=8.0))[0]
    ref = np.linalg.solve(k_dense + 0.1 * np.eye(len(lams)), ravel_pytree(v)[0])
    np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_cg_solve_of_damped_ggn_against_dense_solve(tiny):
    logits = lambda p: tiny.apply(p, tiny.x)  # noqa: E731
    op = lambda p: (lambda v: M.cross_entropy_ggn_vp(logits, p, v))  # noqa: E731
    g = dense(op(tiny.params), tiny.params)
    v = tiny.unravel(jnp.sin(jnp.arange(tiny.dim, dtype=jnp.float64)))
    x = jax.jit(lambda p, v: M.cg_solve(op(p), v, damping=1e-3, tol=1e-8))(tiny.params, v)
    vf, xf = np.asarray(ravel_pytree(v)[0]), np.asarray(ravel_pytree(x)[0])
    a = g + 1e-3 * np.eye(tiny.dim)
    assert np.linalg.norm(vf - a @ xf) <= 1e-6 * np.linalg.norm(vf)
    assert M.residual_norm(op(tiny.params), x, v, 1e-3) <= 1e-6 * np.linalg.norm(vf)
    ref = np.linalg.solve(a, vf)
    # Forward error ≤ κ · relative residual; κ(G + 1e-3 I) ≲ 1e3 here, so 1e-8 · 1e3 ≪ 1e-4.
    np.testing.assert_allclose(xf, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_kfac_and_cg_vmapped_over_runs_equal_per_run(tiny):
    model, _, x, _ = problem()
    stacked = jax.tree_util.tree_map(lambda *t: jnp.stack(t), *[init(model, x, s) for s in range(3)])

    def measures(params):
        fac = M.kfac_factors(model, params, x)
        eig = M.kfac_eigen(fac)
        v = jax.tree_util.tree_map(jnp.ones_like, params)
        op = lambda u: M.cross_entropy_ggn_vp(lambda p: model.apply({"params": p}, x), params, u)  # noqa: E731
        return {
            "factors": fac,
            "kfac_solve": M.kfac_solve(eig, v, damping=0.1),
            "ekfac_solve": M.kfac_solve(eig, v, damping=0.1, eigenvalues=M.ekfac_eigenvalues(model, params, x, eig)),
            "top": M.kfac_top_eigenvector(eig, params),
            "cg": M.cg_solve(op, v, damping=0.1, tol=1e-10),
        }

    batched = jax.jit(jax.vmap(measures))(stacked)
    for i in range(3):
        ref = jax.jit(measures)(jax.tree_util.tree_map(lambda t: t[i], stacked))
        got = jax.tree_util.tree_map(lambda t: t[i], batched)
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12), got, ref)


def test_ekfac_eigenvalues_are_the_exact_block_diagonal_in_the_kfac_eigenbasis():
    model, params, x, _ = problem(n=10)
    fac = M.kfac_factors(model, params, x)
    eig = M.kfac_eigen(fac)
    s = M.ekfac_eigenvalues(model, params, x, eig, batch_size=4)
    ggn = dense(lambda v: M.cross_entropy_ggn_vp(lambda p: model.apply({"params": p}, x), params, v), params)
    k_dense = dense(M.kfac_operator(fac), params)
    e_dense = dense(lambda v: M.kfac_spectral_apply(eig, lambda lam: lam, v, eigenvalues=s), params)
    # Ravel order per layer is [bias (out), kernel (in·out)]; W̃ = [W; b] rows i, columns j.
    # Map the flat block onto W̃'s row-major coordinates to project it on u_i ⊗ v_j.
    start = 0
    for name in ("Dense_0", "Dense_1"):
        k_in, k_out = params[name]["kernel"].shape
        size = k_out * (k_in + 1)
        idx = np.concatenate([k_in * k_out + np.arange(k_out), np.arange(k_in * k_out)])  # flat -> W̃ index
        perm = np.empty(size, int)
        perm[idx] = np.arange(size)  # W̃ index -> position in the flat block
        blk = ggn[start:start + size, start:start + size][np.ix_(perm, perm)]
        basis = np.kron(np.asarray(eig.a_vecs[name]), np.asarray(eig.g_vecs[name]))
        np.testing.assert_allclose(np.ravel(s[name]), np.diag(basis.T @ blk @ basis), rtol=1e-9, atol=1e-13)
        # Frobenius-optimal in the eigenbasis: never worse than K-FAC on the block.
        sl = slice(start, start + size)
        err_e = np.linalg.norm(e_dense[sl, sl] - ggn[sl, sl])
        err_k = np.linalg.norm(k_dense[sl, sl] - ggn[sl, sl])
        assert err_e <= err_k + 1e-12, (name, err_e, err_k)
        start += size
    lam, top = M.kfac_top_eigenvector(eig, params)
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(k_dense)[-1], rtol=1e-9)
    u = np.asarray(ravel_pytree(top)[0])
    np.testing.assert_allclose(k_dense @ u, lam * u, atol=1e-10)
    # One example: K-FAC is exact on the block, so EK-FAC's eigenvalues are K-FAC's.
    model, params, x, _ = problem(n=1)
    eig = M.kfac_eigen(M.kfac_factors(model, params, x))
    s = M.ekfac_eigenvalues(model, params, x, eig)
    for name, lam in M.kfac_eigenvalues(eig).items():
        np.testing.assert_allclose(s[name], lam, atol=1e-10 * np.abs(lam).max())


class TinyCNN(nn.Module):
    """Conv (strided / dilated / padded as given) -> tanh -> flatten -> Dense."""

    conv: dict

    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Conv(3, **self.conv)(x))
        return nn.Dense(2)(x.reshape((x.shape[0], -1)))


@pytest.mark.parametrize("shape, conv", [
    ((7, 2), dict(kernel_size=(3,), padding="SAME")),
    ((7, 2), dict(kernel_size=(2,), strides=(2,), kernel_dilation=(2,), padding="VALID")),
    ((5, 4, 2), dict(kernel_size=(2, 3), strides=(2, 1), padding=((1, 0), (1, 1)))),
])
def test_conv_kfac_patches_and_ekfac_trace_against_per_example_gradients(shape, conv):
    model = TinyCNN(conv)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((4,) + shape))
    params = init(model, x, 1)
    conv_p = params["Conv_0"]
    # Patches reproduce the convolution: patch · W̃ = the module's output at every position.
    patches = conv_patches(nn.Conv(3, **conv), x)
    w = conv_p["kernel"].reshape((-1, 3))
    out = nn.Conv(3, **conv).apply({"params": conv_p}, x)
    np.testing.assert_allclose(patches @ w + conv_p["bias"], out.reshape((4, -1, 3)), rtol=1e-10, atol=1e-12)
    fac = M.kfac_factors(model, params, x)
    hom = np.concatenate([np.asarray(patches), np.ones(patches.shape[:2] + (1,))], axis=2)
    hom = hom.reshape((-1, w.shape[0] + 1))
    np.testing.assert_allclose(fac.A["Conv_0"], hom.T @ hom / hom.shape[0], rtol=1e-10)
    # EK-FAC keeps the exact diagonal of the GGN block in its eigenbasis, so Σ s = tr(block): this
    # checks the per-example gradients Σ_r ã_r g_rᵀ assembled from patches and output gradients.
    eig = M.kfac_eigen(fac)
    s = M.ekfac_eigenvalues(model, params, x, eig)
    ggn = dense(lambda v: M.cross_entropy_ggn_vp(lambda p: model.apply({"params": p}, x), params, v), params)
    size = conv_p["kernel"].size + 3  # Conv_0 comes first in the ravel order
    np.testing.assert_allclose(np.sum(s["Conv_0"]), np.trace(ggn[:size, :size]), rtol=1e-9)
    np.testing.assert_allclose(np.sum(s["Dense_0"]), np.trace(ggn[size:, size:]), rtol=1e-9)
