"""GLM predictive moments of a K-FAC Laplace posterior on ONE Dense layer (e.g. the last layer) in
closed form, without a per-example parameter Jacobian (Daxberger et al. 2021, §3; Immer et al. 2021).

Write the layer as ``s = W̃ᵀ ã`` with ``ã = [a, 1]`` its input (bias as a homogeneous coordinate),
``W̃ = [W; b]`` ``[in+1, out]``, and ``D(x) = ∂f/∂s`` ``[K, out]`` the Jacobian of the network output
with respect to the layer's output (``I`` for the read-out). The parameter Jacobian of output ``k``
is the matrix ``J_k = ã D_kᵀ``. The posterior covariance is stored in the Kronecker eigenbasis,
``Σ = Σ_ij w_ij (u_i v_jᵀ)(u_i v_jᵀ)ᵀ`` with ``w_ij = 1/(λ_ij + τ)`` (K-FAC: ``λ_ij = N λ_A,i λ_G,j``;
EK-FAC: refitted ``λ_ij``), so ``⟨J_k, u_i v_jᵀ⟩ = ψ_i C_kj`` with ``ψ = U_Aᵀ ã`` and ``C = D U_G``:

    S(x) = J Σ Jᵀ = C diag(m) Cᵀ,     m_j = Σ_i ψ_i² w_ij,

``O(in² + K·out²)`` per input instead of ``K`` covariance products of size ``(in+1)·out`` each
(:func:`dl_course.uncertainty.laplace_predictives.function_moments`, which it equals). ``D`` comes
from ``K`` backward passes from the output to the layer's output only (``flax.linen.intercept_methods``
around the layer: the model is unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_course.uncertainty.laplace import KFACCurvature, Laplace
from dl_course.uncertainty.predictive import map_batches


def _tapped_apply(model, variables, name, x, eps=None):
    """``(f, input of the Dense layer at path name)``, adding ``eps`` to that layer's output."""
    seen = {}

    def interceptor(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and "/".join(context.module.path) == name:
            seen["a"] = args[0]
            out = next_fun(*args, **kwargs)
            return out if eps is None else out + eps
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        f = model.apply(variables, x)
    if "a" not in seen:
        raise ValueError(f"the model never calls a module at path {name!r}")
    return f, seen["a"]


def applies(la: Laplace, model: Any, x: jax.Array) -> bool:
    """Whether :func:`kfac_layer_function_moments` covers ``la``: K-FAC / EK-FAC curvature on a
    ``subset`` that is one ``nn.Dense`` layer applied once per example (2-D input)."""
    c = la.curvature
    if not isinstance(c, KFACCurvature) or la.subset is None or list(c.values) != [la.subset]:
        return False
    layer = la.params[la.subset]
    if not isinstance(layer, Mapping) or set(layer) - {"kernel", "bias"} or jnp.ndim(layer["kernel"]) != 2:
        return False
    variables = {"params": la.params, **la.model_state}
    try:
        f, a = jax.eval_shape(lambda xb: _tapped_apply(model, variables, la.subset, xb), x[:1])
    except ValueError:
        return False
    return len(a.shape) == 2 and len(f.shape) == 2


def kfac_layer_function_moments(la: Laplace, model: Any, x: jax.Array,
                                batch_size: int | None = None) -> tuple[jax.Array, jax.Array]:
    """``(μ [N, K], S [N, K, K])``: ``μ = f(x; θ*)`` and ``S = C diag(m) Cᵀ`` (module docstring)
    for a posterior accepted by :func:`applies` (else ``ValueError``). Vmappable over runs."""
    if not applies(la, model, x):
        raise ValueError("kfac_layer_function_moments needs K-FAC / EK-FAC curvature on one Dense layer "
                         "applied once per example (subset); use laplace_predictives.function_moments")
    name, c = la.subset, la.curvature
    variables = {"params": la.params, **la.model_state}
    w = 1.0 / (c.values[name] + la.prior_precision)  # [in(+1), out]
    ua, ug = c.eigen.a_vecs[name], c.eigen.g_vecs[name]
    bias = "bias" in la.params[name]

    def batch(xb, _):
        width = la.params[name]["kernel"].shape[-1]
        eps0 = jnp.zeros((xb.shape[0], width), w.dtype)
        f, vjp, a = jax.vjp(lambda e: _tapped_apply(model, variables, name, xb, e), eps0, has_aux=True)
        k = f.shape[-1]
        cots = jnp.broadcast_to(jnp.eye(k, dtype=f.dtype)[:, None, :], (k,) + f.shape)
        d = jax.vmap(lambda ct: vjp(ct)[0])(cots)  # [K, B, out]: D[b, k, :]
        if bias:
            a = jnp.concatenate([a, jnp.ones(a.shape[:1] + (1,), a.dtype)], axis=1)
        psi = a @ ua  # [B, in(+1)]
        cmat = jnp.einsum("kbo,oj->bkj", d, ug)  # [B, K, out]
        m = (psi**2) @ w  # [B, out]
        s = jnp.einsum("bkj,bj,blj->bkl", cmat, m, cmat)
        return jnp.concatenate([f[:, :, None], s], axis=2)

    out = map_batches(batch, x, batch_size)
    return out[:, :, 0], out[:, :, 1:]
