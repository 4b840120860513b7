"""Loss-landscape directions and slices against direct evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import dl_course.measures as M


def test_filter_normalized_directions_match_parameter_filter_norms():
    rng = np.random.default_rng(0)
    params = {
        "conv": {"kernel": jnp.asarray(rng.standard_normal((3, 3, 2, 4))), "bias": jnp.ones(4)},
        "dense": {"kernel": jnp.asarray(rng.standard_normal((6, 5)))},
        "norm": {"scale": jnp.asarray(rng.standard_normal(5))},
    }
    directions = jax.jit(
        lambda key, params: [M.filter_normalized_direction(key, params, s) for s in (True, False)]
    )(jax.random.key(0), params)
    for skip_1d, d in zip((True, False), directions):
        for layer in ("conv", "dense"):
            w, dw = np.asarray(params[layer]["kernel"]), np.asarray(d[layer]["kernel"])
            axes = tuple(range(w.ndim - 1))  # a filter: everything but the output axis
            np.testing.assert_allclose(
                np.sqrt(np.sum(dw**2, axis=axes)), np.sqrt(np.sum(w**2, axis=axes)), rtol=1e-8
            )
        for one_d in (d["conv"]["bias"], d["norm"]["scale"]):
            ref = params["conv"]["bias"] if one_d.shape == (4,) else params["norm"]["scale"]
            np.testing.assert_array_equal(one_d, np.zeros_like(ref) if skip_1d else ref)


def test_slices_and_interpolation_equal_direct_evaluation(tiny):
    rng = np.random.default_rng(1)
    dx = tiny.unravel(jnp.asarray(rng.standard_normal(tiny.dim)))
    dy = tiny.unravel(jnp.asarray(rng.standard_normal(tiny.dim)))
    other = tiny.unravel(tiny.flat + jnp.asarray(rng.standard_normal(tiny.dim)))
    alphas, betas = jnp.linspace(-1.0, 1.0, 5), jnp.linspace(-0.5, 0.5, 3)

    def metrics(p):
        logits = tiny.apply(p, tiny.x)
        return {"loss": tiny.loss(p), "accuracy": jnp.mean(jnp.argmax(logits, 1) == tiny.y)}

    @jax.jit
    def run(params, dx, dy, other):
        # batch_size 4 does not divide 15 or 5 points: exercises lax.map's remainder.
        return (
            M.slice_2d(metrics, params, dx, dy, alphas, betas, batch_size=4),
            M.slice_1d(tiny.loss, params, dx, alphas, batch_size=4),
            M.interpolate(tiny.loss, params, other, alphas, batch_size=4),
        )

    grid, line, interp = run(tiny.params, dx, dy, other)
    assert grid["loss"].shape == (5, 3) and grid["accuracy"].shape == (5, 3)
    fx, fy, fo = (ravel_pytree(t)[0] for t in (dx, dy, other))
    direct = jax.jit(jax.vmap(lambda f: metrics(tiny.unravel(f))))
    pts = jnp.stack([tiny.flat + a * fx + b * fy for a in alphas for b in betas])
    ref = direct(pts)
    np.testing.assert_allclose(grid["loss"], ref["loss"].reshape(5, 3), rtol=1e-12)
    np.testing.assert_allclose(grid["accuracy"], ref["accuracy"].reshape(5, 3))
    np.testing.assert_allclose(line, ref["loss"].reshape(5, 3)[:, 1], rtol=1e-12)  # β = 0 column
    ref_interp = direct(jnp.stack([(1 - a) * tiny.flat + a * fo for a in alphas]))["loss"]
    np.testing.assert_allclose(interp, ref_interp, rtol=1e-12)


def test_pca_directions_recover_the_plane_of_a_planar_trajectory():
    # θ_t = θ_T + a_t e1 + b_t e2 for orthonormal e1, e2: PCA finds span{e1, e2}, explains all of
    # the variance, and the projected coordinates reconstruct the trajectory.
    rng = np.random.default_rng(2)
    d, steps = 12, 9
    e = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    coef = np.stack([np.linspace(3, 0, steps) ** 2, np.sin(np.linspace(0, 3, steps))], 1)
    coef -= coef[-1]
    final = rng.standard_normal(d)
    flat_traj = final + coef @ e.T
    unravel = ravel_pytree({"a": jnp.zeros(4), "b": jnp.zeros((2, 4))})[1]
    traj = jax.vmap(unravel)(jnp.asarray(flat_traj))

    dirs, ratio = jax.jit(M.pca_directions, static_argnums=2)(traj, None, 2)
    np.testing.assert_allclose(np.sum(ratio), 1.0, rtol=1e-10)
    u = np.asarray(jax.vmap(lambda t: ravel_pytree(t)[0])(dirs))
    np.testing.assert_allclose(u @ u.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(np.linalg.svd(e.T @ u.T, compute_uv=False), 1.0, rtol=1e-10)
    coords = jax.jit(M.project_trajectory)(traj, unravel(jnp.asarray(final)), dirs)
    np.testing.assert_allclose(final + np.asarray(coords) @ u, flat_traj, atol=1e-10)


def test_captured_fraction_matches_a_direct_projection():
    from dl_course.measures import captured_fraction

    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(2, 50))
    inside = dirs.T @ np.array([1.5, -2.0])
    assert float(captured_fraction(jnp.asarray(inside), jnp.asarray(dirs))) == pytest.approx(1.0, abs=1e-10)
    delta = rng.normal(size=50)
    q, _ = np.linalg.qr(dirs.T)
    expected = np.sum((q.T @ delta) ** 2) / np.sum(delta**2)
    # float64 least squares on a 50 x 2 system: rounding only.
    assert float(captured_fraction(jnp.asarray(delta), jnp.asarray(dirs))) == pytest.approx(expected, rel=1e-10)
    # pytrees like the parameters work the same as flat vectors
    tree = {"a": jnp.asarray(delta[:20]), "b": jnp.asarray(delta[20:])}
    tree_dirs = {"a": jnp.asarray(dirs[:, :20]), "b": jnp.asarray(dirs[:, 20:])}
    assert float(captured_fraction(tree, tree_dirs)) == pytest.approx(expected, rel=1e-10)
