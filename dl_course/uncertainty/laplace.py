"""The Laplace approximation of a trained network's posterior (MacKay 1992; Daxberger et al. 2021,
"Laplace Redux"), with GGN curvature that is diagonal, K-FAC or full, over all layers or the last.

At a MAP estimate ``θ*`` of ``log p(D|θ) + log p(θ)`` with prior ``p(θ) = N(0, τ⁻¹ I)``:

    q(θ) = N(θ*, Σ),    Σ = (G + τ I)⁻¹,    G = Σ_n J_nᵀ Λ_n J_n   (GGN of −log p(D|θ) at θ*),

``J_n = ∂f(x_n)/∂θ`` and ``Λ_n = −∇²_f log p(y_n|f)`` (``diag p − ppᵀ`` for softmax
classification, ``I/σ²`` for Gaussian regression: label-free, so ``G`` is the Fisher). Structures:
``"diag"`` (exact GGN diagonal), ``"kfac"`` (Kronecker factors per Dense / Conv layer,
:mod:`dl_course.measures.curvature.kfac`), ``"ekfac"`` (K-FAC's eigenbasis with refitted eigenvalues, George
et al. 2018), ``"full"`` (dense ``G``, small models or the last layer). Each is
stored in its eigenbasis, so every prior precision ``τ`` costs nothing to apply:

    Σ = U diag(1/(λ + τ)) Uᵀ,     θ ~ q:  θ = θ* + U diag((λ + τ)^{-1/2}) Uᵀ z,   z ~ N(0, I).

The Laplace evidence (MacKay 1992; Immer et al. 2021, eq. 3), with ``d`` the number of parameters
in the approximation (the ``2π`` terms of prior and Gaussian integral cancel):

    log p(D|τ) ≈ log p(D|θ*) − (τ/2)‖θ*‖² + (d/2) log τ − ½ Σ_i log(λ_i + τ).

Its derivative in ``log τ`` is ``½(γ − τ‖θ*‖²)`` with ``γ = Σ λ_i/(λ_i + τ)`` (the effective number
of parameters), strictly decreasing, so the maximizer — MacKay's fixed point ``τ = γ/‖θ*‖²`` — is
found by bisection in ``log τ``. Fitted posteriors are pytrees: ``jax.vmap`` over the runs of a sweep
gives one Laplace per ensemble member (MultiLaplace). Predictives:
:mod:`dl_course.uncertainty.laplace_predictives`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dl_course import linalg
from dl_course.measures.curvature.kfac import (
    KFACEigen,
    ekfac_eigenvalues,
    kfac_eigen,
    kfac_eigenvalues,
    kfac_factors,
    kfac_spectral_apply,
    output_cotangents,
)
from dl_course.measures.curvature.products import dataset_mean

PyTree = Any
STRUCTURES = ("diag", "kfac", "ekfac", "full")
LIKELIHOODS = {"classification": "cross_entropy", "regression": "mse"}


class DiagCurvature(NamedTuple):
    """Diagonal GGN: ``values`` shaped like the parameters (basis: the coordinates)."""

    values: PyTree


class KFACCurvature(NamedTuple):
    """K-FAC GGN ``scale · A ⊗ G`` per Dense layer (``scale = N`` or ``N/σ²``) in its Kronecker
    eigenbasis; ``values[name]`` ``[in(+1), out]``: the eigenvalues, ``scale · λ_A λ_Gᵀ`` for K-FAC
    or ``scale · s`` for EK-FAC."""

    eigen: KFACEigen
    values: dict


class FullCurvature(NamedTuple):
    """Dense GGN ``U diag(values) Uᵀ`` over the flattened parameters."""

    values: jax.Array
    vectors: jax.Array


@flax.struct.dataclass
class Laplace:
    """A fitted Laplace posterior (a pytree; static: ``subset``, ``likelihood``).

    Attributes:
      params: the full MAP parameters θ* (all layers, including those not in the posterior).
      model_state: other collections of the model (e.g. ``batch_stats``), used as given.
      curvature: ``DiagCurvature`` | ``KFACCurvature`` | ``FullCurvature`` of the subset.
      prior_precision: scalar τ.
      log_likelihood: ``log p(D | θ*)`` (sum over the training set).
      sigma_noise: Gaussian observation noise σ (regression; 1 for classification).
      subset: ``None`` (all layers) or the top-level params key of the layer(s) in the posterior.
    """

    params: PyTree
    model_state: dict
    curvature: Any
    prior_precision: jax.Array
    log_likelihood: jax.Array
    sigma_noise: jax.Array
    subset: str | None = flax.struct.field(pytree_node=False, default=None)
    likelihood: str = flax.struct.field(pytree_node=False, default="classification")

    @property
    def mean(self) -> PyTree:
        """θ* restricted to the parameters the posterior covers."""
        return self.params if self.subset is None else self.params[self.subset]

    def merge(self, sub: PyTree) -> PyTree:
        """Full parameters with the posterior's part replaced by ``sub``."""
        return sub if self.subset is None else {**self.params, self.subset: sub}

    def with_prior_precision(self, tau) -> Laplace:
        return self.replace(prior_precision=jnp.asarray(tau, jnp.result_type(float)))


def _resolve_subset(params, subset):
    if subset in (None, "all"):
        return None
    if subset == "last_layer":
        return list(params)[-1]  # flax keeps module creation order
    if subset not in params:
        raise ValueError(f"subset {subset!r} is not a top-level params key; valid: all, last_layer, {list(params)}")
    return subset


def _per_example_sqrt_ggn(apply_sub, sub, x, y, loss):
    """``V[n, c] = J_nᵀ L_nc`` (flat, ``[B, C, d]``) with ``L_n L_nᵀ = ∇²_f ℓ_n``."""
    flat, unravel = ravel_pytree(sub)
    f1 = lambda th, xn: apply_sub(unravel(th), xn[None])[0]  # noqa: E731
    jac = jax.vmap(jax.jacrev(f1), in_axes=(None, 0))(flat, x)  # [B, K, d]
    f = apply_sub(sub, x)
    cols = output_cotangents(f, y, loss, "ggn", None)  # [C, B, K]
    return jnp.einsum("cbk,bkd->bcd", cols, jac)


def fit_laplace(
    model: nn.Module,
    params: PyTree,
    x: jax.Array,
    y: jax.Array,
    *,
    likelihood: str = "classification",
    structure: str = "kfac",
    subset: str | None = None,
    prior_precision: float = 1.0,
    sigma_noise: float = 1.0,
    model_state: dict | None = None,
    batch_size: int | None = None,
) -> Laplace:
    """Fit ``q(θ) = N(θ*, (G + τI)⁻¹)`` at the trained ``params`` on the training set ``(x, y)``.

    ``likelihood``: ``"classification"`` (softmax over the model's logits, integer ``y``) or
    ``"regression"`` (``y ~ N(f(x), σ² I)``). ``structure``: ``"diag"`` (exact GGN diagonal, ``K``
    back-propagations per example), ``"kfac"`` / ``"ekfac"`` (Dense and Conv layers only) or ``"full"``
    (``d × d``).
    ``subset``: ``None``/``"all"``, ``"last_layer"`` (the last top-level params key) or a top-level
    key. The model is evaluated with ``model.apply({"params": …, **model_state}, x)`` (eval mode);
    ``batch_size`` bounds memory (``B · K · d`` floats for diag/full) without changing the result.
    ``prior_precision`` τ can be chosen afterwards (:func:`optimize_prior_precision`).
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; valid: {sorted(LIKELIHOODS)}")
    if structure not in STRUCTURES:
        raise ValueError(f"unknown structure {structure!r}; valid: {list(STRUCTURES)}")
    loss = LIKELIHOODS[likelihood]
    state = dict(model_state or {})
    name = _resolve_subset(params, subset)
    la = Laplace(params, state, None, jnp.asarray(prior_precision, jnp.result_type(float)),
                 jnp.zeros(()), jnp.asarray(sigma_noise, jnp.result_type(float)), name, likelihood)
    apply_sub = lambda sub, xb: model.apply({"params": la.merge(sub), **state}, xb)  # noqa: E731
    n = x.shape[0]
    noise_prec = 1.0 / la.sigma_noise**2 if likelihood == "regression" else 1.0
    data = {"x": x, "y": y}
    bs = batch_size or n

    def batch_loglik(b):
        f = apply_sub(la.mean, b["x"])
        if likelihood == "classification":
            return jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(f), b["y"][:, None], axis=1))
        r = (b["y"].reshape(f.shape) - f) ** 2
        return jnp.mean(-0.5 * jnp.sum(r, -1) * noise_prec - 0.5 * f.shape[-1] * jnp.log(2 * jnp.pi / noise_prec))

    loglik = n * dataset_mean(batch_loglik, data, bs)
    if structure in ("kfac", "ekfac"):
        fac = kfac_factors(model, params, x, loss=loss, model_state=state, batch_size=batch_size, within=name)
        eigen = kfac_eigen(fac)
        if structure == "kfac":
            lam = kfac_eigenvalues(eigen)
        else:
            lam = ekfac_eigenvalues(model, params, x, eigen, loss=loss, model_state=state, batch_size=batch_size)
        curv = KFACCurvature(eigen, {k: n * noise_prec * v for k, v in lam.items()})
    else:
        sub = la.mean

        def batch_curv(b):
            v = _per_example_sqrt_ggn(apply_sub, sub, b["x"], b["y"], loss)
            if structure == "diag":
                return jnp.mean(jnp.sum(v**2, axis=1), axis=0)
            v = v.reshape((-1, v.shape[-1]))
            return v.T @ v / b["x"].shape[0]

        g = n * noise_prec * dataset_mean(batch_curv, data, bs)
        if structure == "diag":
            curv = DiagCurvature(ravel_pytree(sub)[1](g))
        else:
            vals, vecs = linalg.eigh(0.5 * (g + g.T))
            curv = FullCurvature(jnp.maximum(vals, 0.0), vecs)
    return la.replace(curvature=curv, log_likelihood=loglik)


def curvature_eigenvalues(la: Laplace) -> jax.Array:
    """All eigenvalues ``λ_i`` of the (approximate) GGN, flat."""
    c = la.curvature
    if isinstance(c, DiagCurvature):
        return ravel_pytree(c.values)[0]
    if isinstance(c, FullCurvature):
        return c.values
    return jnp.concatenate([jnp.ravel(c.values[k]) for k in c.eigen.a_vals])


def spectral_apply(la: Laplace, fn, v: PyTree) -> PyTree:
    """``U diag(fn(λ)) Uᵀ v`` for ``v`` shaped like ``la.mean`` (``fn`` acts on eigenvalues)."""
    c = la.curvature
    if isinstance(c, DiagCurvature):
        return jax.tree_util.tree_map(lambda lam, t: fn(lam) * t, c.values, v)
    if isinstance(c, FullCurvature):
        flat, unravel = ravel_pytree(v)
        return unravel(c.vectors @ (fn(c.values) * (c.vectors.T @ flat)))
    if la.subset is None:
        return kfac_spectral_apply(c.eigen, fn, v, eigenvalues=c.values)
    return kfac_spectral_apply(c.eigen, fn, {la.subset: v}, eigenvalues=c.values)[la.subset]


def posterior_precision_vp(la: Laplace, v: PyTree) -> PyTree:
    """``(G + τ I) v``."""
    return spectral_apply(la, lambda lam: lam + la.prior_precision, v)


def posterior_covariance_vp(la: Laplace, v: PyTree) -> PyTree:
    """``Σ v = (G + τ I)⁻¹ v``."""
    return spectral_apply(la, lambda lam: 1.0 / (lam + la.prior_precision), v)


def sample(la: Laplace, key: jax.Array) -> PyTree:
    """One draw ``θ = θ* + Σ^{1/2} z`` of the posterior's parameters (the subset; see ``merge``)."""
    flat, unravel = ravel_pytree(la.mean)
    z = unravel(jax.random.normal(key, flat.shape, flat.dtype))
    noise = spectral_apply(la, lambda lam: jax.lax.rsqrt(lam + la.prior_precision), z)
    return jax.tree_util.tree_map(jnp.add, la.mean, noise)


def log_marginal_likelihood(la: Laplace, prior_precision=None) -> jax.Array:
    """Laplace evidence ``log p(D|τ)`` (module docstring) at ``prior_precision`` (default: the
    posterior's τ), with θ* and the curvature held fixed."""
    tau = la.prior_precision if prior_precision is None else prior_precision
    lam = curvature_eigenvalues(la)
    sq = sum(jnp.vdot(t, t) for t in jax.tree_util.tree_leaves(la.mean))
    d = lam.shape[0]
    return la.log_likelihood - 0.5 * tau * sq + 0.5 * d * jnp.log(tau) - 0.5 * jnp.sum(jnp.log(lam + tau))


def optimize_prior_precision(
    la: Laplace, *, log_bounds: tuple[float, float] = (-15.0, 15.0), num_iters: int = 100
) -> Laplace:
    """``la`` with the evidence-maximizing τ (MacKay 1992; Immer et al. 2021), θ* fixed.

    Bisection on ``∂ log p(D|τ)/∂ log τ = ½(Σ λ_i/(λ_i+τ) − τ‖θ*‖²)`` (decreasing) over
    ``log τ ∈ log_bounds`` (clipped there if the maximizer lies outside); ``num_iters`` halvings
    reach float precision. Vmappable (MultiLaplace). Validation-NLL choice:
    :func:`dl_course.uncertainty.laplace_predictives.select_prior_precision`.
    """
    lam = curvature_eigenvalues(la)
    sq = sum(jnp.vdot(t, t) for t in jax.tree_util.tree_leaves(la.mean))
    slope = lambda s: jnp.sum(lam / (lam + jnp.exp(s))) - jnp.exp(s) * sq  # noqa: E731

    def step(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        up = slope(mid) > 0
        return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

    lo, hi = jax.lax.fori_loop(0, num_iters, step, (jnp.asarray(log_bounds[0], lam.dtype),
                                                    jnp.asarray(log_bounds[1], lam.dtype)))
    return la.with_prior_precision(jnp.exp(0.5 * (lo + hi)))
