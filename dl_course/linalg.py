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
accelerators they are ``jnp.linalg``'s. Inputs are small (tridiagonal Lanczos matrices, layer
weights, trajectory PCA), so the host round trip costs microseconds on CPU. They are not
differentiable (measures are never differentiated through).
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
