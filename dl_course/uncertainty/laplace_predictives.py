"""Predictive distributions of a Laplace posterior, as the package's ``Predictive`` (so every
calibration / OOD metric applies), and the choice of the prior precision by validation NLL.

Linearized (GLM) predictive (MacKay 1992; Immer, Korzepa & Bauer 2021; the default of Daxberger et
al. 2021): ``f(x; θ) ≈ f(x; θ*) + J(x)(θ − θ*)``, so ``f(x) ~ N(μ(x), S(x))`` with ``μ = f(x; θ*)``
and ``S = J Σ Jᵀ`` (``K × K`` per input). Link approximations (``method``):

* ``"probit"`` (MacKay 1992): for two classes, exactly in terms of the logit difference ``δ = f₁ −
  f₀`` with variance ``s² = S₁₁ + S₀₀ − 2S₀₁``: ``p(y=1|x) ≈ σ(μ_δ / √(1 + π s²/8))``, from
  ``σ(a) ≈ Φ(√(π/8) a)``; its absolute error is ≤ 6e-4 for ``s ≤ 0.3``, 5e-3 for ``s ≤ 1``,
  1.3e-2 for ``s ≤ 3``. For ``K > 2`` it is the extended probit below.
* ``"extended_probit"`` (Gibbs 1997; Daxberger et al. 2021, §3.3): ``p ≈ softmax(μ_k / √(1 + π
  S_kk/8))`` (ignores the off-diagonal of ``S``).
* ``"mc"``: ``S`` samples of the GLM logits ``μ + S^{1/2} ε`` per input (marginals exact).
* ``"nn_mc"``: ``S`` parameter samples ``θ_s ~ q`` pushed through the network itself (Bayesian
  model averaging, :func:`dl_course.uncertainty.bma.bayesian_model_average`).

Probit methods return one row of logits whose softmax is the approximate predictive
(``Predictive`` with ``S = 1``); the MC methods return ``[S, N, K]``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dl_course import linalg
from dl_course.uncertainty.bma import bayesian_model_average
from dl_course.uncertainty.laplace import (
    Laplace,
    fit_laplace,
    optimize_prior_precision,
    posterior_covariance_vp,
    sample,
)
from dl_course.uncertainty.laplace_kron_moments import applies as kron_moments_apply
from dl_course.uncertainty.laplace_kron_moments import kfac_layer_function_moments
from dl_course.uncertainty.predictive import Predictive, map_batches, pool_runs

METHODS = ("probit", "extended_probit", "mc", "nn_mc")


def function_moments(
    la: Laplace, model: Any, x: jax.Array, batch_size: int | None = None
) -> tuple[jax.Array, jax.Array]:
    """GLM predictive moments ``(μ [N, K], S [N, K, K])`` with ``S(x) = J(x) Σ J(x)ᵀ``
    (add ``σ² I`` for the predictive of a regression target). Memory ``B · K · d`` per batch."""
    flat, unravel = ravel_pytree(la.mean)
    apply = lambda th, xb: model.apply({"params": la.merge(unravel(th)), **la.model_state}, xb)  # noqa: E731
    cov_flat = lambda r: ravel_pytree(posterior_covariance_vp(la, unravel(r)))[0]  # noqa: E731

    def batch(xb, _):
        mu = apply(flat, xb)
        jac = jax.vmap(jax.jacrev(lambda th, xn: apply(th, xn[None])[0]), in_axes=(None, 0))(flat, xb)
        sj = jax.vmap(jax.vmap(cov_flat))(jac)  # [B, K, d]
        return jnp.concatenate([mu[:, :, None], jnp.einsum("bkd,bld->bkl", jac, sj)], axis=2)

    out = map_batches(batch, x, batch_size)
    return out[:, :, 0], out[:, :, 1:]


def probit_logits(mean: jax.Array, cov: jax.Array, binary: bool | None = None) -> jax.Array:
    """Logits ``[N, K]`` whose softmax is the (extended) probit predictive (module docstring);
    ``binary`` (default: ``K == 2``) selects MacKay's two-class form."""
    k = mean.shape[-1]
    binary = k == 2 if binary is None else binary
    if binary:
        if k != 2:
            raise ValueError(f"the binary probit needs 2 classes, got {k}")
        delta = mean[:, 1] - mean[:, 0]
        var = cov[:, 1, 1] + cov[:, 0, 0] - 2 * cov[:, 0, 1]
        z = delta / jnp.sqrt(1 + jnp.pi * var / 8)
        return jnp.stack([jnp.zeros_like(z), z], axis=1)
    diag = jnp.diagonal(cov, axis1=1, axis2=2)
    return mean / jnp.sqrt(1 + jnp.pi * diag / 8)


def _mc_glm_logits(mean, cov, key, num_samples):
    vals, vecs = linalg.eigh(cov)
    root = vecs * jnp.sqrt(jnp.maximum(vals, 0.0))[:, None, :]  # S^{1/2} = U diag(√λ)
    eps = jax.random.normal(key, (num_samples,) + mean.shape, mean.dtype)
    return mean[None] + jnp.einsum("nkl,snl->snk", root, eps)


def laplace_predictive(
    la: Laplace,
    model: Any,
    x: jax.Array,
    *,
    method: str = "probit",
    key: jax.Array | None = None,
    num_samples: int = 30,
    batch_size: int | None = None,
    chunk_size: int | None = None,
) -> Predictive:
    """Predictive of a classification Laplace posterior on ``x`` as a ``Predictive``
    (``method`` in ``METHODS``; module docstring). MC methods need ``key``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {list(METHODS)}")
    if la.likelihood != "classification":
        raise ValueError("laplace_predictive is for classification; use function_moments (+ σ²) for regression")
    if method != "probit" and method != "extended_probit" and key is None:
        raise ValueError(f"method {method!r} needs a key")
    if method == "nn_mc":
        return bayesian_model_average(
            lambda variables, xb: model.apply(variables, xb),
            lambda k: {"params": la.merge(sample(la, k)), **la.model_state},
            key, x, num_samples, chunk_size, batch_size,
        )
    # One K-FAC layer (e.g. the last): the same moments in closed form (laplace_kron_moments).
    moments = kfac_layer_function_moments if kron_moments_apply(la, model, x) else function_moments
    mean, cov = moments(la, model, x, batch_size)
    if method == "mc":
        return Predictive(_mc_glm_logits(mean, cov, key, num_samples))
    return Predictive(probit_logits(mean, cov, binary=None if method == "probit" else False)[None])


def validation_nll(la: Laplace, model: Any, x: jax.Array, y: jax.Array, prior_precisions: jax.Array, *,
                   method: str = "probit", key: jax.Array | None = None, num_samples: int = 30,
                   batch_size: int | None = None) -> jax.Array:
    """Mean NLL ``−(1/N) Σ log p(y_n | x_n, D)`` of the predictive on ``(x, y)`` for each τ in
    ``prior_precisions`` (evaluated with ``lax.map``; the same ``key`` for every τ, so MC noise is
    common to the candidates). Each candidate costs one full predictive on ``(x, y)`` (Jacobians
    included), so keep the validation set and the grid small."""

    def one(tau):
        pred = laplace_predictive(la.with_prior_precision(tau), model, x, method=method, key=key,
                                  num_samples=num_samples, batch_size=batch_size)
        return -jnp.mean(jnp.take_along_axis(pred.log_probs, y[:, None], axis=1))

    return jax.lax.map(one, jnp.asarray(prior_precisions))


def select_prior_precision(la: Laplace, model: Any, x_val: jax.Array, y_val: jax.Array, *,
                           prior_precisions: jax.Array | None = None, **kwargs) -> Laplace:
    """``la`` with the τ of ``prior_precisions`` (default ``10^{-4..4}``, 33 values) that
    minimizes the validation NLL (as in Daxberger et al. 2021's ``gridsearch``; ``kwargs`` go to
    :func:`validation_nll`)."""
    grid = jnp.logspace(-4.0, 4.0, 33) if prior_precisions is None else jnp.asarray(prior_precisions)
    nll = validation_nll(la, model, x_val, y_val, grid, **kwargs)
    return la.with_prior_precision(grid[jnp.argmin(nll)])


def fit_multilaplace(model: Any, stacked_params: Any, x: jax.Array, y: jax.Array, *,
                     optimize_prior: bool = True, **kwargs) -> Laplace:
    """One Laplace posterior per ensemble member: :func:`~dl_course.uncertainty.laplace.fit_laplace`
    vmapped over the leading run axis of ``stacked_params`` (e.g. ``SweepResult.params`` over
    seeds), each with its own evidence-maximizing τ when ``optimize_prior``."""

    def one(params):
        la = fit_laplace(model, params, x, y, **kwargs)
        return optimize_prior_precision(la) if optimize_prior else la

    return jax.vmap(one)(stacked_params)


def multilaplace_predictive(stacked: Laplace, model: Any, x: jax.Array, key: jax.Array, **kwargs) -> Predictive:
    """MultiLaplace: one Laplace posterior per ensemble member (``stacked`` has a leading run axis,
    e.g. ``jax.vmap(fit_laplace …)`` over a sweep's seeds), each member's predictive (vmapped,
    keys ``split(key, R)``) pooled into one mixture of ``R · S`` samples (Eschenhagen et al. 2021,
    "Mixtures of Laplace approximations")."""
    runs = jax.tree_util.tree_leaves(stacked)[0].shape[0]
    keys = jax.random.split(key, runs)
    stacked_pred = jax.vmap(lambda la, k: laplace_predictive(la, model, x, key=k, **kwargs))(stacked, keys)
    return pool_runs(stacked_pred)
