"""Dense decompositions (eigh, svd, least squares) that are safe inside vmapped XLA:CPU programs.

Why this exists: jaxlib 0.10.2's CPU LAPACK kernels split a *batched* decomposition into chunks,
schedule them on XLA's intra-op thread pool and block until they finish
(``jax::ParallelBatchMap`` → ``BlockingCounter::Wait``). When the thunk executor runs as many
independent batched decompositions at once as the pool has threads, every pool thread waits for
chunks that no free thread can run: the program deadlocks at 0% CPU. A vmapped measure program is
exactly that — e.g. the Hessian-spectrum study runs five independent Lanczos/SLQ eigendecompositions
per run, and on 2 cores it hung every time (native stacks: both ``tf_XLAEigen`` threads in
``lapack_ssyevd_ffi`` → ``ParallelBatchMap``). jax 0.11.2 compiles that parallel path out of its
open-source builds; 0.10.2 is the newest jaxlib on this project's index.

On the CPU backend these functions therefore compute on the host with numpy's LAPACK
(``jax.pure_callback``, batched over every leading axis, so ``vmap`` adds no Python loop); on
accelerators they are ``jnp.linalg``'s. Inputs are small (layer weights, trajectory PCA), so
the host round trip itself costs microseconds on CPU. They are not differentiable (measures are
never differentiated through).

:func:`eigh_tridiagonal` (the eigenproblem of every Lanczos call) needs no host at all: on CPU it
is a parallel-order cyclic Jacobi method written in XLA operations, so a Lanczos run inside a
training scan never leaves the device program (see its docstring for why this matters).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _on_host() -> bool:
    """True when the computation is being traced for the CPU backend (decided at trace time)."""
    return jax.default_backend() == "cpu"


def _host_call(fn, out_shapes, *args):
    """``jax.pure_callback(fn, out_shapes, *args)`` batched over leading axes under ``vmap``.

    64-bit arrays cross in both directions as ``uint32`` pairs, bit-cast on each side: the
    callback runs on an XLA thread where a ``jax.enable_x64`` context of the caller (thread-local)
    is not active, and jax would canonicalize float64 arguments and results to float32 there."""
    wide = [np.dtype(o.dtype).itemsize == 8 for o in out_shapes]
    declared = [jax.ShapeDtypeStruct(o.shape + (2,), np.uint32) if w else o for o, w in zip(out_shapes, wide)]
    arg_dtypes = [np.dtype(a.dtype) for a in args]
    args = [jax.lax.bitcast_convert_type(a, jnp.uint32) if d.itemsize == 8 else a for a, d in zip(args, arg_dtypes)]

    def host(*xs):
        xs = [np.ascontiguousarray(np.asarray(x)).view(d)[..., 0] if d.itemsize == 8 else np.asarray(x)
              for x, d in zip(xs, arg_dtypes)]
        outs = fn(*xs)
        return tuple(np.ascontiguousarray(np.asarray(o, d.dtype)).view(np.uint32).reshape(np.shape(o) + (2,)) if w
                     else np.asarray(o, d.dtype) for o, d, w in zip(outs, out_shapes, wide))

    outs = jax.pure_callback(host, tuple(declared), *args, vmap_method="broadcast_all")
    return tuple(jax.lax.bitcast_convert_type(o, d.dtype) if w else o for o, d, w in zip(outs, out_shapes, wide))


def eigh(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of the symmetric matrices
    ``a[..., n, n]``, as ``jnp.linalg.eigh`` (lower triangle used)."""
    if not _on_host():
        return jnp.linalg.eigh(a)
    n = a.shape[-1]
    shapes = (jax.ShapeDtypeStruct(a.shape[:-1], a.dtype), jax.ShapeDtypeStruct(a.shape[:-2] + (n, n), a.dtype))
    return _host_call(lambda x: np.linalg.eigh(x, UPLO="L"), shapes, a)


def svd(a: jax.Array, full_matrices: bool = True, compute_uv: bool = True):
    """Singular value decomposition of ``a[..., m, n]``, as ``jnp.linalg.svd`` (singular values
    descending); ``compute_uv=False`` returns the singular values only."""
    if not _on_host():
        return jnp.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    s_shape = jax.ShapeDtypeStruct(batch + (k,), a.dtype)
    if not compute_uv:
        return _host_call(lambda x: (np.linalg.svd(x, compute_uv=False),), (s_shape,), a)[0]
    mu, nv = (m, n) if full_matrices else (k, k)
    shapes = (jax.ShapeDtypeStruct(batch + (m, mu), a.dtype), s_shape, jax.ShapeDtypeStruct(batch + (nv, n), a.dtype))
    return _host_call(lambda x: np.linalg.svd(x, full_matrices=full_matrices), shapes, a)


def lstsq(a: jax.Array, b: jax.Array, rcond: float | None = None) -> jax.Array:
    """Minimum-norm least-squares solution ``x = A⁺ b`` of ``a[m, n] x = b[m]`` or ``b[m, k]``
    (``numpy.linalg.lstsq``'s solution): ``A⁺ = V diag(1/σ_i for σ_i > rcond·σ_max) Uᵀ`` with
    ``rcond`` defaulting to ``eps · max(m, n)``."""
    if a.ndim != 2 or b.ndim not in (1, 2):
        raise ValueError(f"lstsq takes a[m, n] and b[m] or b[m, k] (vmap for batches); got {a.shape}, {b.shape}")
    u, s, vt = svd(a, full_matrices=False)
    if rcond is None:
        rcond = jnp.finfo(a.dtype).eps * max(a.shape)
    keep = s > rcond * s[0]
    inv = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)
    ub = u.T @ b
    return vt.T @ (inv * ub if b.ndim == 1 else inv[:, None] * ub)


# ------------------------------------------------------------------------------------------------
# Small symmetric eigenproblems inside the program: parallel-order cyclic Jacobi.


def _jacobi_rotations(a_pp, a_qq, a_pq):
    """Cosine and sine of the symmetric Schur rotation zeroing ``a_pq`` (Golub & Van Loan,
    *Matrix Computations* 4th ed., Alg. 8.5.1): ``τ = (a_qq − a_pp)/(2 a_pq)``,
    ``t = sign(τ)/(|τ| + √(1 + τ²))`` (the smaller angle, |θ| ≤ π/4), ``c = 1/√(1+t²)``, ``s = tc``;
    the identity where ``a_pq = 0``."""
    zero = a_pq == 0
    tau = (a_qq - a_pp) / (2.0 * jnp.where(zero, 1.0, a_pq))
    sign = jnp.where(tau >= 0, 1.0, -1.0).astype(tau.dtype)
    t = jnp.where(zero, 0.0, sign / (jnp.abs(tau) + jnp.hypot(1.0, tau)))
    c = 1.0 / jnp.sqrt(1.0 + t * t)
    return c, t * c


def jacobi_eigh(a: jax.Array, *, max_sweeps: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of a small symmetric matrix
    ``a[n, n]`` by the cyclic Jacobi method in parallel (round-robin) order, in XLA operations only.

    Each rotation ``A ← JᵀAJ`` zeroes one off-diagonal pair (Jacobi 1846); a *sweep* visits every
    pair once, in ``n − 1`` rounds of ``n/2`` disjoint rotations applied at once (Brent & Luk 1985;
    Golub & Van Loan §8.5.5; ``n`` odd is padded with a decoupled index). The off-diagonal norm
    ``off(A)`` converges quadratically once small (Henrici 1958), so a handful of sweeps reach
    ``off(A) ≤ n·ε·‖A‖_F``; then ``diag(A)`` holds the eigenvalues to absolute accuracy
    ``O(n ε ‖A‖)`` and the accumulated rotations ``V`` are orthogonal to working precision — for
    clustered or equal eigenvalues too, where inverse iteration needs explicit
    re-orthogonalization (Demmel & Veselić 1992 on Jacobi's accuracy). Cost ``O(n³)`` per sweep:
    meant for the ``m × m`` projections of Krylov methods (``m`` up to a few hundred), not for
    large matrices. Works under ``vmap`` (the sweep loop runs until every matrix has converged).

    Args:
      a: ``(n, n)`` symmetric (only its symmetric part is meaningful).
      max_sweeps: cap on the number of sweeps (default 30, far above the ~5–10 needed).
    """
    n = a.shape[-1]
    if a.ndim != 2 or a.shape[0] != n:
        raise ValueError(f"jacobi_eigh takes one square matrix (vmap for batches), got {a.shape}")
    if n == 1:
        return a[0], jnp.ones_like(a)
    dtype = a.dtype
    eps = jnp.finfo(dtype).eps
    size = n + n % 2
    if size != n:  # an extra index with no coupling: every rotation touching it is the identity
        a = jnp.pad(a, ((0, 1), (0, 1)))
    half = size // 2
    tol = n * eps * jnp.linalg.norm(a)
    max_sweeps = 30 if max_sweeps is None else int(max_sweeps)

    def off_norm(x):
        return jnp.linalg.norm(x - jnp.diag(jnp.diagonal(x)))

    def rotate(x, c, s, axis):
        """Rotate the pairs (i, size−1−i) of ``x`` along ``axis`` (``x`` in round-robin order)."""
        top = jax.lax.slice_in_dim(x, 0, half, axis=axis)
        bot = jax.lax.rev(jax.lax.slice_in_dim(x, half, size, axis=axis), (axis,))
        shape = [1, 1]
        shape[axis] = half
        c, s = c.reshape(shape), s.reshape(shape)
        new_top, new_bot = c * top - s * bot, s * top + c * bot
        return jnp.concatenate([new_top, jax.lax.rev(new_bot, (axis,))], axis=axis)

    def advance(x, axis):
        """Next round's order: index 0 stays, the others shift cyclically by one position."""
        sl = lambda a, b: jax.lax.slice_in_dim(x, a, b, axis=axis)  # noqa: E731
        return jnp.concatenate([sl(0, 1), sl(2, size), sl(1, 2)], axis=axis)

    def one_round(_, carry):
        # The arrays are kept in the round-robin order ("circle method"): position 0 fixed, the
        # others shifted by the round number; position i is paired with position size−1−i. Over
        # the size−1 rounds of a sweep every pair meets once and the order returns to natural.
        x, v = carry
        d = jnp.diagonal(x)
        c, s = _jacobi_rotations(d[:half], d[half:][::-1], jnp.diagonal(x[:half, half:][:, ::-1]))
        x = rotate(rotate(x, c, s, 0), c, s, 1)
        v = rotate(v, c, s, 1)
        return advance(advance(x, 0), 1), advance(v, 1)

    def sweep(state):
        x, v, i, _ = state
        x, v = jax.lax.fori_loop(0, size - 1, one_round, (x, v))
        x = 0.5 * (x + x.T)  # keep exactly symmetric (the two one-sided updates round differently)
        return x, v, i + 1, off_norm(x)

    def not_done(state):
        _, _, i, off = state
        return (off > tol) & (i < max_sweeps)

    x, v, _, _ = jax.lax.while_loop(not_done, sweep, (a, jnp.eye(size, dtype=dtype), 0, off_norm(a)))
    w = jnp.diagonal(x)
    if size != n:
        w, v = w[:n], v[:n, :n]
    order = jnp.argsort(w)
    return w[order], v[:, order]


def eigh_tridiagonal(d: jax.Array, e: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of the symmetric tridiagonal
    matrix with diagonal ``d[n]`` and off-diagonal ``e[n − 1]`` (``scipy.linalg.eigh_tridiagonal``'s
    convention), computed inside the XLA program on every backend.

    On CPU: :func:`jacobi_eigh` of the dense ``n × n`` matrix (XLA operations; no LAPACK call, so
    no deadlock under ``vmap``, and no host round trip). Why not :func:`eigh`'s host callback: a
    ``jax.pure_callback`` inside a training scan stops the program at every evaluation point
    until numpy returns, and numpy's LAPACK runs on OpenBLAS threads that then compete with
    XLA's busy CPU threads (and, on a shared machine, other processes). From the sizes where
    LAPACK's symmetric eigensolver calls multithreaded BLAS the wall time explodes: measured on
    the 2-core machine under load, 10 callbacks for 16 matrices 30 × 30 inside a scan took
    1.46 s (0.08 s with ``OPENBLAS_NUM_THREADS=1``; this Jacobi solver 0.15 s, the same scan
    without any eigensolver 0.09 s), and a vmapped 20-step Lanczos of 16 runs took 1.07 s with
    the callback against 0.62 s without the eigenproblem — the reported "10 → 20 Lanczos
    iterations cost 7× the first 10" (``benchmarks/bench_lanczos_cost.py`` times the three
    paths, compile and run separately). ``jax.scipy.linalg.eigh_tridiagonal`` (bisection)
    computes eigenvalues in XLA operations too, but its eigenvectors use LAPACK's batched
    tridiagonal solver and QR. On accelerators: ``jnp.linalg.eigh`` of the dense matrix. Under
    ``vmap`` both work on a batch of matrices.
    """
    n = d.shape[-1]
    if d.ndim != 1 or e.shape != (n - 1,):
        raise ValueError(f"eigh_tridiagonal takes d[n] and e[n-1] (vmap for batches), got {d.shape}, {e.shape}")
    t = jnp.diag(d) + jnp.diag(e, 1) + jnp.diag(e, -1)
    if not _on_host():
        return jnp.linalg.eigh(t)
    return jacobi_eigh(t)
