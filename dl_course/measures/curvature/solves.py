"""Damped inverse-curvature solves ``(C + δ I)⁻¹ v``: matrix-free conjugate gradients for any PSD
pytree operator (GGN, Fisher, K-FAC), and the closed-form K-FAC inverse.

Used for natural-gradient / Newton steps, influence functions (Koh & Liang 2017) and Laplace
posteriors. CG (Hestenes & Stiefel 1952) needs ``C + δI`` symmetric positive definite — the
Hessian of a non-convex loss is not, its GGN is (Martens 2010, "Hessian-free" optimization). In
exact arithmetic CG converges in at most ``d`` steps and its error after ``k`` steps falls like
``2((√κ − 1)/(√κ + 1))^k`` in the energy norm (κ the condition number), so damping speeds it up.
``jax.scipy.sparse.linalg.cg`` works on pytrees and is a ``while_loop``: under ``jax.vmap`` over runs
every run iterates until the slowest one has converged (the converged ones do not change).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dl_course.measures.curvature.kfac import KFACEigen, kfac_inverse_operator
from dl_course.measures.curvature.operators import Operator

PyTree = Any


def cg_solve(
    operator: Operator,
    v: PyTree,
    *,
    damping: float = 0.0,
    tol: float = 1e-8,
    maxiter: int | None = None,
    x0: PyTree | None = None,
) -> PyTree:
    """``x ≈ (C + δ I)⁻¹ v`` by conjugate gradients, matrix-free (``operator(v) -> C v``).

    Stops when ``‖v − (C + δI) x‖ ≤ tol · ‖v‖`` or after ``maxiter`` iterations (default ``10 d``,
    jax's default). ``damping`` ``δ`` may be traced (e.g. vmapped over runs).
    """
    damped = lambda x: jax.tree_util.tree_map(lambda cx, xx: cx + damping * xx, operator(x), x)  # noqa: E731
    x, _ = jax.scipy.sparse.linalg.cg(damped, v, x0=x0, tol=tol, atol=0.0, maxiter=maxiter)
    return x


def kfac_solve(eigen: KFACEigen, v: PyTree, *, damping: float, scale: float = 1.0,
               eigenvalues: dict | None = None) -> PyTree:
    """``(scale · A ⊗ G + δ I)⁻¹ v`` layer by layer, in closed form from the factors'
    eigendecompositions (:func:`~dl_course.measures.curvature.kfac.kfac_inverse_operator`): ``U_A [(U_Aᵀ Ṽ
    U_G) / (scale λ_A λ_Gᵀ + δ)] U_Gᵀ``; the inverse of the K-FAC approximation, not of ``C``.
    ``eigenvalues``: EK-FAC's refitted ones (:func:`~dl_course.measures.curvature.kfac.ekfac_eigenvalues`)."""
    return kfac_inverse_operator(eigen, damping, scale, eigenvalues)(v)


def residual_norm(operator: Operator, x: PyTree, v: PyTree, damping: float = 0.0) -> jax.Array:
    """``‖v − (C + δI) x‖`` (the quantity CG's stopping rule bounds)."""
    r = jax.tree_util.tree_map(lambda vv, cx, xx: vv - cx - damping * xx, v, operator(x), x)
    return jnp.sqrt(sum(jnp.vdot(t, t) for t in jax.tree_util.tree_leaves(r)))
