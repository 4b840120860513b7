"""dl_course.linalg: the host (numpy LAPACK) decompositions used on CPU equal jnp.linalg's, under
jit and vmap, in float32 and float64. (The deadlock they avoid is exercised by the vmapped measure
programs of tests/studies/test_measure_studies.py, which hung every time with jnp.linalg.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course import linalg


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eigh_svd_lstsq_match_numpy_under_jit_and_vmap(dtype):
    with jax.enable_x64(dtype == np.float64):
        rng = np.random.default_rng(0)
        a = rng.normal(size=(3, 6, 6)).astype(dtype)
        sym = a + np.swapaxes(a, 1, 2)
        w, v = jax.jit(jax.vmap(linalg.eigh))(jnp.asarray(sym))
        assert w.dtype == dtype and v.shape == (3, 6, 6)
        w_ref = np.linalg.eigvalsh(sym)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(w, w_ref, rtol=tol, atol=tol * 10)
        # eigenvectors up to sign: A v = λ v
        np.testing.assert_allclose(np.einsum("bij,bjk->bik", sym, v), v * np.asarray(w)[:, None, :], atol=tol * 100)

        m = rng.normal(size=(2, 7, 4)).astype(dtype)
        s = jax.jit(jax.vmap(lambda x: linalg.svd(x, compute_uv=False)))(jnp.asarray(m))
        np.testing.assert_allclose(s, np.linalg.svd(m, compute_uv=False), rtol=tol, atol=tol)
        u, s2, vt = jax.jit(lambda x: linalg.svd(x, full_matrices=False))(jnp.asarray(m[0]))
        np.testing.assert_allclose(np.asarray(u) * np.asarray(s2) @ np.asarray(vt), m[0], atol=tol * 100)

        b = rng.normal(size=(7, 2)).astype(dtype)
        x = jax.jit(linalg.lstsq)(jnp.asarray(m[0]), jnp.asarray(b))
        np.testing.assert_allclose(x, np.linalg.lstsq(m[0], b, rcond=None)[0], rtol=tol * 100, atol=tol * 100)
        # rank deficient: the minimum-norm solution, as numpy's
        r = np.concatenate([m[0][:, :2], m[0][:, :2]], axis=1)
        x = linalg.lstsq(jnp.asarray(r), jnp.asarray(b[:, 0]))
        np.testing.assert_allclose(x, np.linalg.lstsq(r, b[:, 0], rcond=None)[0], rtol=tol * 100, atol=tol * 100)
