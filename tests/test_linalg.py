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


# ---- eigh_tridiagonal / jacobi_eigh: on-device symmetric eigensolver (float64 checks) ----------


def _dense(d, e):
    return np.diag(d) + np.diag(e, 1) + np.diag(e, -1)


def _check_eigh(t, w, v, *, c=8.0):
    """Against numpy.linalg.eigh in float64, with tolerances from backward-stable perturbation
    theory (c·n·ε·‖T‖ for eigenvalues and residuals, c·n·ε for orthogonality), and eigenvectors
    through the spectral projector of each cluster: ``‖P − P_ref‖ ≤ c·n·ε·‖T‖ / gap`` where ``gap``
    separates the cluster from the rest (Davis–Kahan), so vectors of nearly equal eigenvalues are
    compared as the subspace they span, the only well-defined object."""
    t, w, v = np.asarray(t), np.asarray(w), np.asarray(v)
    n = t.shape[0]
    eps = np.finfo(np.float64).eps
    norm = np.linalg.norm(t, 2)
    w_ref, u = np.linalg.eigh(t)
    assert np.all(np.diff(w) >= 0)
    assert np.max(np.abs(w - w_ref)) <= c * n * eps * norm
    assert np.max(np.linalg.norm(t @ v - v * w, axis=0)) <= c * n * eps * norm
    assert np.max(np.abs(v.T @ v - np.eye(n))) <= c * n * eps
    # Clusters: maximal runs of eigenvalues with neighbours closer than 1e-8·‖T‖.
    bounds = [0] + [i + 1 for i in range(n - 1) if w_ref[i + 1] - w_ref[i] > 1e-8 * norm] + [n]
    worst = 0.0
    for a, b in zip(bounds[:-1], bounds[1:]):
        left = w_ref[a] - w_ref[a - 1] if a > 0 else np.inf
        right = w_ref[b] - w_ref[b - 1] if b < n else np.inf
        gap = min(left, right)
        if not np.isfinite(gap):  # one cluster holds the whole spectrum: both projectors are I
            continue
        proj = v[:, a:b] @ v[:, a:b].T - u[:, a:b] @ u[:, a:b].T
        worst = max(worst, np.linalg.norm(proj, 2) * gap / (n * eps * norm))
    assert worst <= c, worst
    return bounds


def test_jacobi_eigh_matches_numpy_on_random_symmetric_matrices():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        for n in (1, 2, 3, 8, 21, 40):
            a = rng.normal(size=(n, n))
            a = a + a.T
            _check_eigh(a, *jax.jit(linalg.jacobi_eigh)(jnp.asarray(a)))


def test_eigh_tridiagonal_on_clustered_and_degenerate_spectra():
    """The hard cases of tridiagonal eigensolvers (LAPACK's test matrices, Dhillon 1997):
    Wilkinson's W21+ (its top eigenvalues come in pairs that agree to ~1e-13), three W21+
    glued by couplings 1e-10 (clusters of three eigenvalues within ~1e-10), and a matrix with
    exactly repeated eigenvalues (zero couplings: decoupled equal blocks)."""
    with jax.enable_x64(True):
        w21_d = np.abs(np.arange(21) - 10.0)
        w21_e = np.ones(20)
        glued_d = np.tile(w21_d, 3)
        glued_e = np.concatenate([w21_e, [1e-10], w21_e, [1e-10], w21_e])
        block_d, block_e = np.array([2.0, 1.0, 2.0] * 3), np.array([1.0, 1.0, 0.0] * 2 + [1.0, 1.0])
        solve = jax.jit(linalg.eigh_tridiagonal)
        for d, e in ((w21_d, w21_e), (glued_d, glued_e), (block_d, block_e)):
            bounds = _check_eigh(_dense(d, e), *solve(jnp.asarray(d), jnp.asarray(e)))
            assert max(np.diff(bounds)) >= 2  # each case does contain clusters


def test_eigh_tridiagonal_under_vmap_matches_numpy_and_bisection_in_float32():
    rng = np.random.default_rng(1)
    d = rng.normal(size=(4, 15)).astype(np.float32)
    e = rng.normal(size=(4, 14)).astype(np.float32)
    w, v = jax.jit(jax.vmap(linalg.eigh_tridiagonal))(jnp.asarray(d), jnp.asarray(e))
    assert w.dtype == np.float32 and v.shape == (4, 15, 15)
    ref = np.linalg.eigvalsh(np.stack([_dense(a, b) for a, b in zip(d, e)]).astype(np.float64))
    # float32: eigenvalues to a few ε·n·‖T‖ (‖T‖ ~ 4 here); jax's bisection agrees as well.
    np.testing.assert_allclose(w, ref, rtol=0, atol=2e-5)
    bisect = jax.vmap(lambda a, b: jax.scipy.linalg.eigh_tridiagonal(a, b, eigvals_only=True))(d, e)
    np.testing.assert_allclose(bisect, ref, rtol=0, atol=2e-5)
    t = np.stack([_dense(a, b) for a, b in zip(d, e)])
    np.testing.assert_allclose(np.einsum("bij,bjk->bik", t, v), np.asarray(v) * np.asarray(w)[:, None], atol=5e-5)


TWO_DEVICE_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from dl_course import linalg
assert len(jax.devices()) == 2
sh = NamedSharding(Mesh(np.asarray(jax.devices()), ("runs",)), PartitionSpec("runs"))
rng = np.random.default_rng(0)
d = jax.device_put(jnp.asarray(rng.normal(size=(8, 30)), jnp.float32), sh)
e = jax.device_put(jnp.asarray(rng.normal(size=(8, 29)), jnp.float32), sh)

@jax.jit
def both(d, e):  # two independent batched eigenproblems per device, as in a vmapped measure
    w1, v1 = jax.vmap(linalg.eigh_tridiagonal)(d, e)
    w2, _ = jax.vmap(linalg.eigh_tridiagonal)(2 * d, e)
    w3 = jax.vmap(lambda a, b: jax.scipy.linalg.eigh_tridiagonal(a, b, eigvals_only=True))(d, e)
    return w1, w2, w3

for _ in range(20):
    w1, w2, w3 = jax.block_until_ready(both(d, e))
t = np.stack([np.diag(a) + np.diag(b, 1) + np.diag(b, -1) for a, b in zip(np.asarray(d), np.asarray(e))])
ref = np.linalg.eigvalsh(t.astype(np.float64))
assert np.max(np.abs(np.asarray(w1) - ref)) < 1e-4 and np.max(np.abs(np.asarray(w3) - ref)) < 1e-4
print("ok")
"""


def test_eigh_tridiagonal_sharded_over_two_cpu_devices_does_not_deadlock():
    """jnp.linalg.eigh hangs in this setting with jaxlib 0.10.2 (module docstring); the Jacobi
    solver and jax's bisection use XLA operations only. A hang fails through the timeout."""
    import os
    import subprocess
    import sys

    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", TWO_DEVICE_SCRIPT], env=env, cwd=root, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
