"""K-FAC: Kronecker-factored GGN / Fisher of the Dense and Conv layers of a flax model (Martens &
Grosse 2015; Grosse & Martens 2016).

For a Dense layer ``s = a W + b`` (flax layout: kernel ``W`` is ``[in, out]``) write ``ã = [a, 1]``
(bias as a homogeneous coordinate) and ``W̃ = [W; b]`` (``[in+1, out]``). With ``g_{n,c} = ∂(L_{n,:,c}ᵀ
f_n)/∂s_n`` the back-propagated columns of a square root ``Λ_n = L_n L_nᵀ`` of the output Hessian of
example ``n``, the layer's block of the GGN of the *mean* loss is ``(1/N) Σ_n Σ_c (ã_n ⊗ g_nc)(ã_n ⊗
g_nc)ᵀ`` and K-FAC replaces it by the Kronecker product of expectations

    A = (1/N) Σ_n ã_n ã_nᵀ,      G = (1/N) Σ_n Σ_c g_nc g_ncᵀ,      block ≈ A ⊗ G,

acting on ``vec(W̃)`` in row-major order: ``(A ⊗ G) vec(V) = vec(A V G)``. It is exact for a single
example (``N = 1``: the sum has one term). Layers are not coupled (block-diagonal approximation).

Curvature types (``fisher``): ``"ggn"`` uses the exact square root of the output Hessian (``L = I``
for ``mse``, ``½‖f − y‖²`` per example; ``L = diag(√p) − p√pᵀ`` for softmax cross-entropy, where the
GGN equals the Fisher), ``K`` back-propagations per example; ``"mc"`` one sampled target per example
(``ŷ ~ p(y|f)``: an unbiased single-sample estimate of the same G, Martens & Grosse 2015 §5);
``"empirical"`` the observed targets (the empirical Fisher, Kunstner et al. 2019).

EK-FAC (George et al. 2018, :func:`ekfac_eigenvalues`) keeps the Kronecker eigenbasis and refits
the eigenvalues to the projected per-example gradients.

Convolutions (``nn.Conv``; KFC, Grosse & Martens 2016) are Dense layers on input patches shared
over the output positions (:mod:`dl_course.measures.curvature.kfac_conv`), under the "expand" convention:

Weight sharing, "expand" convention (Eschenhagen et al. 2023): when a Dense layer sees inputs
with extra leading axes (``[N, R, in]``, e.g. a sequence or the positions of a 1x1 convolution),
each of the ``R`` positions counts as an example in ``A = (1/(NR)) Σ_{n,r} ã ãᵀ`` while ``G = (1/N)
Σ_{n,r,c} g gᵀ`` sums over them; for the MLP (``R = 1``) this is plain K-FAC. For a convolution
the positions are the output pixels and ``ã`` the input patches.

Activations and output gradients are captured with ``flax.linen.intercept_methods`` around
``nn.Dense.__call__``: nothing in the model changes. Everything is vmappable over runs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_course import linalg
from dl_course.measures.curvature.kfac_conv import conv_patches
from dl_course.measures.curvature.products import dataset_mean

PyTree = Any
LOSSES = ("cross_entropy", "mse")
FISHER_TYPES = ("ggn", "mc", "empirical")


class KFACFactors(NamedTuple):
    """``A[name]``: ``[in(+1), in(+1)]`` input factor (``+1`` when the layer has a bias; ``in = Π
    kernel_size · C_in`` for a convolution);
    ``G[name]``: ``[out, out]`` output-gradient factor; ``name`` is the Dense module's path joined
    by ``"/"`` (e.g. ``"Dense_0"``), which is also its location in ``params``."""

    A: dict
    G: dict


class KFACEigen(NamedTuple):
    """Eigendecompositions ``A = U_A diag(λ_A) U_Aᵀ`` and ``G = U_G diag(λ_G) U_Gᵀ`` per layer; the
    eigenvalues of ``A ⊗ G`` are ``λ_A,i λ_G,j`` with eigenvectors ``u_i ⊗ v_j``."""

    a_vals: dict
    a_vecs: dict
    g_vals: dict
    g_vecs: dict


def _taps(model, variables, x, apply_kwargs, eps=None):
    """Apply the model recording each Dense input and adding ``eps[name]`` to its output."""
    inputs, outputs = {}, {}

    def interceptor(next_fun, args, kwargs, context):
        is_conv = type(context.module) is nn.Conv
        if (isinstance(context.module, nn.Dense) or is_conv) and context.method_name == "__call__":
            name = "/".join(context.module.path)
            inputs[name] = conv_patches(context.module, args[0]) if is_conv else args[0]
            out = next_fun(*args, **kwargs)
            outputs[name] = out
            return out if eps is None else out + eps[name]
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        f = model.apply(variables, x, **apply_kwargs)
    return f, inputs, outputs


def output_cotangents(f, y, loss, fisher, key):
    """Output-space vectors ``[C, N, K]`` whose back-propagations are the ``g_{n,c}`` of the module
    docstring: for ``fisher="ggn"`` the ``C = K`` columns of a square root ``L_n`` of the output
    Hessian of example ``n`` (``Σ_c L_nc L_ncᵀ = ∇²_f ℓ_n``); for ``"mc"`` / ``"empirical"`` one
    per-example loss gradient ``∇_f ℓ_n(ŷ)`` (sampled / observed target ``ŷ``)."""
    if loss == "mse":
        if fisher == "ggn":
            return jnp.broadcast_to(jnp.eye(f.shape[-1], dtype=f.dtype)[:, None, :], (f.shape[-1],) + f.shape)
        if fisher == "mc":
            return jax.random.normal(key, f.shape, f.dtype)[None]
        return (f - y)[None]
    p = jax.nn.softmax(f, axis=-1)
    if fisher == "ggn":  # L = diag(√p) − p √pᵀ; column c is  √p_c e_c − p √p_c
        sq = jnp.sqrt(p)
        eye = jnp.eye(f.shape[-1], dtype=f.dtype)
        return jnp.einsum("nc,ck->cnk", sq, eye) - jnp.einsum("nk,nc->cnk", p, sq)
    target = jax.random.categorical(key, f) if fisher == "mc" else y
    return (p - jax.nn.one_hot(target, f.shape[-1], dtype=f.dtype))[None]


def _batch_taps(model, params, x, y, key, loss, fisher, model_state, apply_kwargs):
    """``{name: (ã [N, R, in(+1)], g [C, N, R, out])}`` for every Dense / Conv layer on one batch."""
    variables = {"params": params, **(model_state or {})}
    _, _, out_shapes = jax.eval_shape(lambda: _taps(model, variables, x, apply_kwargs))
    eps0 = {k: jnp.zeros(s.shape, s.dtype) for k, s in out_shapes.items()}
    f, vjp, inputs = jax.vjp(lambda e: _taps(model, variables, x, apply_kwargs, e)[:2], eps0, has_aux=True)
    cots = output_cotangents(f, y, loss, fisher, key)
    grads = jax.vmap(lambda c: vjp(c)[0])(cots)  # {name: [C, N, ..., out]}
    n = x.shape[0]
    out = {}
    for name, a in inputs.items():
        a = a.reshape((n, -1, a.shape[-1]))
        if "bias" in _layer(params, name):
            a = jnp.concatenate([a, jnp.ones(a.shape[:2] + (1,), a.dtype)], axis=2)
        g = grads[name]
        out[name] = (a, g.reshape((g.shape[0], n, -1, g.shape[-1])))
    return out


def _batch_factors(taps):
    A = {k: jnp.einsum("nri,nrj->ij", a, a) / (a.shape[0] * a.shape[1]) for k, (a, _) in taps.items()}
    G = {k: jnp.einsum("cnri,cnrj->ij", g, g) / g.shape[1] for k, (_, g) in taps.items()}
    return KFACFactors(A, G)


def _layer(params, name):
    node = params
    for part in name.split("/"):
        node = node[part]
    return node


def kfac_factors(
    model: nn.Module,
    params: PyTree,
    x: jax.Array,
    y: jax.Array | None = None,
    *,
    loss: str = "cross_entropy",
    fisher: str = "ggn",
    key: jax.Array | None = None,
    model_state: dict | None = None,
    batch_size: int | None = None,
    apply_kwargs: dict | None = None,
    within: str | None = None,
) -> KFACFactors:
    """K-FAC factors ``A``, ``G`` of every Dense / Conv layer on the dataset ``x`` (see module docstring).

    ``y`` is needed for ``fisher="empirical"``, ``key`` for ``"mc"``. With ``batch_size`` the
    factors are accumulated over batches with exact example weights (``dataset_mean``), so they do
    not depend on the batch size. ``model_state`` holds non-``params`` collections (evaluated as
    given, e.g. BatchNorm statistics in eval mode); ``apply_kwargs`` go to ``model.apply``.
    ``within`` (a top-level params key, e.g. the last layer) keeps only the layers inside it;
    otherwise every parameter must belong to a Dense or Conv layer (else ``ValueError``).
    """
    factors = _over_dataset(_batch_factors, model, params, x, y, loss=loss, fisher=fisher, key=key,
                            model_state=model_state, batch_size=batch_size, apply_kwargs=apply_kwargs)
    if within is not None:
        keep = [k for k in factors.A if k == within or k.startswith(within + "/")]
        factors = KFACFactors({k: factors.A[k] for k in keep}, {k: factors.G[k] for k in keep})
        params = {within: params[within]}
    _check_coverage(params, factors)
    return factors


def _over_dataset(fn, model, params, x, y=None, *, loss="cross_entropy", fisher="ggn", key=None, model_state=None,
                  batch_size=None, apply_kwargs=None):
    """``fn(taps of a batch)`` (a per-example mean) averaged over the dataset in batches; the keyword
    arguments are those of :func:`kfac_factors` (and of :func:`ekfac_eigenvalues`)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {list(LOSSES)}")
    if fisher not in FISHER_TYPES:
        raise ValueError(f"unknown fisher type {fisher!r}; valid: {list(FISHER_TYPES)}")
    if fisher == "empirical" and y is None:
        raise ValueError("fisher='empirical' needs the targets y")
    if fisher == "mc" and key is None:
        raise ValueError("fisher='mc' needs a key")
    kw = apply_kwargs or {}
    n = x.shape[0]
    data = {"x": x, "i": jnp.arange(n)}
    if y is not None:
        data["y"] = y

    def per_batch(b):
        k = None if key is None else jax.random.fold_in(key, b["i"][0])
        return fn(_batch_taps(model, params, b["x"], b.get("y"), k, loss, fisher, model_state, kw))

    return dataset_mean(per_batch, data, batch_size or n)


def _check_coverage(params, factors):
    covered = set()
    for name in factors.A:
        for leaf in _layer(params, name):
            covered.add(f"{name}/{leaf}")
    paths = [path for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    flat = {"/".join(str(getattr(k, "key", k)) for k in path) for path in paths}
    missing = sorted(flat - covered)
    if missing:
        raise ValueError(f"K-FAC covers Dense and Conv layers only; these parameters are in neither: {missing}")


def _stack(layer):
    w = layer["kernel"].reshape((-1, layer["kernel"].shape[-1]))  # conv kernels: (Π k · C_in, C_out)
    return jnp.concatenate([w, layer["bias"][None]], axis=0) if "bias" in layer else w


def _unstack(layer, m):
    shape = layer["kernel"].shape
    if "bias" in layer:
        return {**layer, "kernel": m[:-1].reshape(shape), "bias": m[-1]}
    return {**layer, "kernel": m.reshape(shape)}


def _map_layers(fn, names, v):
    """Replace each layer ``name`` of pytree ``v`` by ``_unstack(fn(name, _stack(layer)))``."""
    out = jax.tree_util.tree_map(lambda t: t, v)  # shallow copy of containers

    def setin(tree, parts, value):
        tree = dict(tree)
        tree[parts[0]] = value if len(parts) == 1 else setin(tree[parts[0]], parts[1:], value)
        return tree

    for name in names:
        layer = _layer(v, name)
        out = setin(out, name.split("/"), _unstack(layer, fn(name, _stack(layer))))
    return out


def kfac_operator(factors: KFACFactors, scale: float = 1.0):
    """``v -> scale · (A ⊗ G) v`` layer by layer (``vec(A Ṽ G)``), a pytree operator like the
    GGN/Fisher ones of :mod:`dl_course.measures.curvature.products` (``scale = N`` for a summed loss)."""
    return lambda v: _map_layers(lambda k, m: scale * factors.A[k] @ m @ factors.G[k], factors.A, v)


def kfac_eigen(factors: KFACFactors) -> KFACEigen:
    """Eigendecompose every factor (``dl_course.linalg.eigh``; ascending, clipped at 0 since the
    factors are PSD up to rounding)."""
    av, au, gv, gu = {}, {}, {}, {}
    for k in factors.A:
        a_vals, au[k] = linalg.eigh(factors.A[k])
        g_vals, gu[k] = linalg.eigh(factors.G[k])
        av[k], gv[k] = jnp.maximum(a_vals, 0.0), jnp.maximum(g_vals, 0.0)
    return KFACEigen(av, au, gv, gu)


def kfac_eigenvalues(eigen: KFACEigen, scale: float = 1.0) -> dict:
    """``{name: [in(+1), out]}`` eigenvalues ``scale · λ_A,i λ_G,j`` of each layer's ``A ⊗ G``."""
    return {k: scale * jnp.outer(eigen.a_vals[k], eigen.g_vals[k]) for k in eigen.a_vals}


def kfac_spectral_apply(eigen: KFACEigen, fn, v, scale: float = 1.0, eigenvalues: dict | None = None):
    """``v -> Σ_ij fn(λ_ij) (u_i ⊗ v_j)(u_i ⊗ v_j)ᵀ v`` layer by layer, i.e. a matrix function of
    the K-FAC operator: ``U_A [fn(Λ) ⊙ (U_Aᵀ Ṽ U_G)] U_Gᵀ`` with ``Λ = scale · λ_A λ_Gᵀ``, or
    ``scale · eigenvalues[name]`` when given (EK-FAC, :func:`ekfac_eigenvalues`)."""
    if eigenvalues is None:
        lam = kfac_eigenvalues(eigen, scale)
    else:
        lam = {k: scale * eigenvalues[k] for k in eigen.a_vals}

    def one(k, m):
        ua, ug = eigen.a_vecs[k], eigen.g_vecs[k]
        return ua @ (fn(lam[k]) * (ua.T @ m @ ug)) @ ug.T

    return _map_layers(one, eigen.a_vals, v)


def kfac_top_eigenvector(eigen: KFACEigen, params: PyTree, eigenvalues: dict | None = None):
    """``(λ, u)``: the largest eigenvalue of the block-diagonal K-FAC (or EK-FAC) operator and its
    unit eigenvector ``u_i ⊗ v_j`` as a pytree like ``params`` (zero outside its layer)."""
    lam = kfac_eigenvalues(eigen) if eigenvalues is None else eigenvalues
    names = list(eigen.a_vals)
    tops = jnp.stack([jnp.max(lam[k]) for k in names])
    best = jnp.argmax(tops)

    def layer_vec(idx, k):
        i, j = jnp.unravel_index(jnp.argmax(lam[k]), lam[k].shape)
        vec = jnp.outer(eigen.a_vecs[k][:, i], eigen.g_vecs[k][:, j])
        return jnp.where(best == idx, vec, jnp.zeros_like(vec))

    zero = jax.tree_util.tree_map(jnp.zeros_like, params)
    index = {k: i for i, k in enumerate(names)}
    return jnp.max(tops), _map_layers(lambda k, m: layer_vec(index[k], k), names, zero)


def ekfac_eigenvalues(
    model: nn.Module, params: PyTree, x: jax.Array, eigen: KFACEigen, y: jax.Array | None = None, **options
) -> dict:
    """EK-FAC (George et al. 2018): keep K-FAC's eigenbasis ``U_A ⊗ U_G`` and refit the
    eigenvalues to the second moments of the per-example gradients projected onto it,

        s_ij = (1/N) Σ_n Σ_c [(U_Aᵀ Γ_nc U_G)_ij]²,     Γ_nc = Σ_r ã_nr g_ncrᵀ,

    which is the diagonal of the exact GGN/Fisher block in that basis (the Frobenius-optimal
    approximation in it; with ``s_ij = λ_A,i λ_G,j`` one recovers K-FAC). ``{name: [in(+1), out]}``
    for the mean loss; pass it to :func:`kfac_spectral_apply` as ``eigenvalues``. Costs ``C``
    per-example gradients (``[C, B, in+1, out]`` floats per batch). ``options``: ``loss``,
    ``fisher``, ``key``, ``model_state``, ``batch_size``, ``apply_kwargs`` as in :func:`kfac_factors`.
    """

    def per_batch(taps):
        out = {}
        for k, (a, g) in taps.items():
            if k not in eigen.a_vecs:
                continue
            m = jnp.einsum("nri,cnrj->cnij", a @ eigen.a_vecs[k], g @ eigen.g_vecs[k])
            out[k] = jnp.sum(m**2, axis=0).mean(axis=0)
        return out

    return _over_dataset(per_batch, model, params, x, y, **options)


def kfac_inverse_operator(eigen: KFACEigen, damping: float, scale: float = 1.0,
                          eigenvalues: dict | None = None):
    """``v -> (scale · A ⊗ G + δ I)⁻¹ v`` per layer, exactly (the damping is added to the
    Kronecker eigenvalues, not split between the factors as in Martens & Grosse 2015 §6.3);
    with ``eigenvalues`` (EK-FAC) the inverse of ``scale · U diag(s) Uᵀ + δ I``."""
    return lambda v: kfac_spectral_apply(eigen, lambda lam: 1.0 / (lam + damping), v, scale, eigenvalues)
