"""Per-layer curvature blocks against the diagonal blocks of the dense Hessian."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import dl_course.measures as M


def layered(p):
    """The fixture's flat {w0, b0, w1, b1} as flax-style layers {Dense_i: {kernel, bias}}."""
    return {f"Dense_{i}": {"kernel": p[f"w{i}"], "bias": p[f"b{i}"]} for i in range(2)}


def flat_params(lp):
    out = {}
    for i in range(2):
        out[f"w{i}"], out[f"b{i}"] = lp[f"Dense_{i}"]["kernel"], lp[f"Dense_{i}"]["bias"]
    return out


def setup(tiny):
    params = layered(tiny.params)
    loss = lambda lp: tiny.loss(flat_params(lp))  # noqa: E731
    flat, unravel = ravel_pytree(params)
    h = np.asarray(jax.hessian(lambda f: loss(unravel(f)))(flat))
    # Index ranges of each layer in the flat vector (ravel order = sorted keys).
    sizes = [sum(x.size for x in jax.tree_util.tree_leaves(params[k])) for k in sorted(params)]
    starts = np.cumsum([0] + sizes)
    blocks = {k: h[starts[i]:starts[i + 1], starts[i]:starts[i + 1]] for i, k in enumerate(sorted(params))}
    return params, loss, h, blocks


def dense(op, tree):
    """Matrix of a pytree operator on ``tree``'s space, column by column."""
    flat, unravel = ravel_pytree(tree)
    cols = jax.jit(jax.vmap(lambda e: ravel_pytree(op(unravel(e)))[0]))(jnp.eye(flat.shape[0]))
    return np.asarray(cols).T


def test_blocks_equal_dense_hessian_blocks_and_layer_traces_sum_to_trace(tiny):
    params, loss, h, blocks = setup(tiny)
    full_op = M.hessian_operator(loss, params)
    for name in params:
        # Both constructions (restricted HVP; full operator with the other layers zeroed) give the
        # dense Hessian's diagonal block to rounding.
        np.testing.assert_allclose(dense(M.hessian_block_operator(loss, params, name), params[name]),
                                   blocks[name], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(dense(M.block_operator(full_op, params, name), params[name]),
                                   blocks[name], rtol=1e-10, atol=1e-13)
    exact = M.operator_layer_traces(params, loss_fn=loss, exact=True)
    for name in params:
        np.testing.assert_allclose(exact[name][0], np.trace(blocks[name]), rtol=1e-10)
    np.testing.assert_allclose(sum(t for t, _ in exact.values()), np.trace(h), rtol=1e-10)
    # Hutchinson per block: within 4 stderr of the block trace, and the sum of the layer traces
    # within 4 combined stderr of the full trace.
    est = jax.jit(lambda p, k: M.operator_layer_traces(p, loss_fn=loss, key=k, num_samples=300))(
        params, jax.random.key(0))
    for name, (t, se) in est.items():
        assert abs(t - np.trace(blocks[name])) <= 4 * se, name
    total_se = np.sqrt(sum(se**2 for _, se in est.values()))
    assert abs(sum(t for t, _ in est.values()) - np.trace(h)) <= 4 * total_se
    lt = M.layer_traces(loss, params, key=jax.random.key(0), num_samples=300)
    assert set(lt) == {"Dense_0", "Dense_1"}
    np.testing.assert_allclose(lt["Dense_0"], est["Dense_0"][0], rtol=1e-12)


def test_layer_top_eigenvalues_and_densities(tiny):
    params, loss, h, blocks = setup(tiny)
    # Lanczos run to the block dimension is exact (Krylov space = whole block).
    top = jax.jit(lambda p, k: M.layer_top_eigenvalues(loss, p, 2, key=k, num_iters=40))(params, jax.random.key(1))
    for name in params:
        ref = np.sort(np.linalg.eigvalsh(blocks[name]))[::-1][:2]
        np.testing.assert_allclose(top[name], ref, rtol=1e-8, atol=1e-10)
        assert top[name][0] <= np.linalg.eigvalsh(h)[-1] + 1e-10  # Cauchy interlacing
    # The same through the generic operator path (a GGN-like PSD operator: H²).
    sq = lambda v: M.hessian_operator(loss, params)(M.hessian_operator(loss, params)(v))  # noqa: E731
    res = M.layer_eigenpairs(params, 1, key=jax.random.key(2), operator=sq, num_iters=40)
    # The block of H² is Σ_m H_lm H_ml (not H_ll²): the reference is built from the full H.
    idx = {"Dense_0": slice(0, 20), "Dense_1": slice(20, 38)}
    for name in params:
        ref = (h @ h)[idx[name], idx[name]]
        np.testing.assert_allclose(res[name].eigenvalues[0], np.linalg.eigvalsh(ref)[-1], rtol=1e-8)
    dens = M.layer_spectral_densities(params, key=jax.random.key(3), loss_fn=loss, num_probes=2, num_iters=10,
                                      num_points=128)
    for grid, d in dens.values():
        np.testing.assert_allclose(np.trapezoid(d, grid), 1.0, rtol=1e-10)


def test_block_measures_vmapped_over_runs_equal_per_run(tiny):
    def measures(p, key):
        lp = layered(p)
        loss = lambda q: tiny.loss(flat_params(q))  # noqa: E731
        return {
            "traces": M.layer_traces(loss, lp, key=key, num_samples=4),
            "top": M.layer_top_eigenvalues(loss, lp, 1, key=key, num_iters=6),
            "exact": M.operator_layer_traces(lp, loss_fn=loss, exact=True),
            "density": M.layer_spectral_densities(lp, key=key, loss_fn=loss, num_probes=2, num_iters=4,
                                                  num_points=16),
        }

    params = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[tiny.init(s) for s in range(3)])
    keys = jax.random.split(jax.random.key(0), 3)
    batched = jax.jit(jax.vmap(measures))(params, keys)
    single = jax.jit(measures)
    for i in range(3):
        ref = single(jax.tree_util.tree_map(lambda x: x[i], params), keys[i])
        got = jax.tree_util.tree_map(lambda x: x[i], batched)
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12), got, ref)
