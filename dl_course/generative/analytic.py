"""Exact perturbed marginals and scores for Gaussian-mixture data: the ground truth of the tests and
the "oracle" score of the toy studies.

For data ``x(0) ~ sum_k w_k N(mu_k, C_k)`` and a linear SDE with kernel
``x(t) | x(0) ~ N(alpha(t) x(0), std(t)^2 I)`` (``dl_course.generative.sde``), the marginal is again
a mixture,

    p_t = sum_k w_k N(alpha(t) mu_k, alpha(t)^2 C_k + std(t)^2 I),

so ``log p_t`` and its score ``grad_x log p_t`` are closed-form (the score by autodiff of the
log-sum-exp). A single Gaussian is the one-component case. This is what a perfectly trained score
network would output (Song et al. 2021; Vincent 2011: the DSM minimiser is ``grad log p_t``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from dl_course.generative.sde import _per_example


@struct.dataclass
class GaussianMixture:
    """Mixture ``sum_k weights[k] N(means[k], C_k)`` on ``R^d`` (flattened examples).

    Stored by the eigendecompositions ``C_k = eigvecs[k] diag(eigvals[k]) eigvecs[k]^T`` so that the
    marginals ``alpha^2 C_k + std^2 I`` (same eigenvectors, eigenvalues ``alpha^2 lam + std^2``) cost
    no factorisation inside a sampler. Build with ``from_covs`` / ``gaussian``.
    Attributes: ``weights [K]`` (summing to 1), ``means [K, d]``, ``eigvals [K, d]``, ``eigvecs [K, d, d]``.
    """

    weights: jax.Array
    means: jax.Array
    eigvals: jax.Array
    eigvecs: jax.Array

    @classmethod
    def from_covs(cls, weights, means, covs):
        """Mixture with component covariances ``covs [K, d, d]`` (symmetric positive definite)."""
        means = jnp.asarray(means)
        eigvals, eigvecs = jnp.linalg.eigh(jnp.asarray(covs, means.dtype))
        return cls(jnp.asarray(weights, means.dtype), means, eigvals, eigvecs)

    @classmethod
    def gaussian(cls, mean, cov):
        """The single Gaussian ``N(mean, cov)``."""
        mean = jnp.asarray(mean)
        return cls.from_covs(jnp.ones((1,), mean.dtype), mean[None], jnp.asarray(cov, mean.dtype)[None])

    @property
    def covs(self):
        """Component covariances ``[K, d, d]``."""
        return jnp.einsum("kij,kj,klj->kil", self.eigvecs, self.eigvals, self.eigvecs)

    def sample(self, key, n):
        """``n`` i.i.d. draws, shape ``[n, d]``."""
        k_comp, k_noise = jax.random.split(key)
        comp = jax.random.choice(k_comp, self.weights.shape[0], (n,), p=self.weights)
        z = jax.random.normal(k_noise, (n, self.means.shape[1]), self.means.dtype)
        root = self.eigvecs * jnp.sqrt(self.eigvals)[:, None, :]               # U diag(sqrt(lam))
        return self.means[comp] + jnp.einsum("nij,nj->ni", root[comp], z)

    def marginal(self, sde, t):
        """The mixture ``p_t`` at a scalar time ``t``: means ``alpha mu_k``, covs ``alpha^2 C_k + std^2 I``."""
        alpha, std = sde.marginal_coeffs(jnp.asarray(t, self.means.dtype))
        return GaussianMixture(self.weights, alpha * self.means, alpha ** 2 * self.eigvals + std ** 2,
                               self.eigvecs)

    def logpdf(self, x):
        """``log p(x)`` per example, ``x [n, d]``."""
        return self._log_components(x, jnp.ones(x.shape[:1], x.dtype), jnp.zeros(x.shape[:1], x.dtype))[0]

    def _log_components(self, x, alpha, std):
        """log-density of ``x [n, d]`` under ``p_t`` (given per-example ``alpha, std``) and its score.

        With ``C_k = U_k diag(lam_k) U_k^T``, the covariance of component k of ``p_t`` is
        ``U_k diag(v) U_k^T`` with ``v = alpha^2 lam_k + std^2``.
        The score is ``sum_k r_k(x) P_k (alpha mu_k - x)`` with responsibilities ``r_k`` and
        precisions ``P_k``.
        """
        d = self.means.shape[1]
        lam, u = self.eigvals, self.eigvecs                                      # [K, d], [K, d, d]
        v = alpha[:, None, None] ** 2 * lam[None] + std[:, None, None] ** 2      # [n, K, d]
        diff = x[:, None, :] - alpha[:, None, None] * self.means[None]            # [n, K, d]
        proj = jnp.einsum("kji,nkj->nki", u, diff)                               # U_k^T diff
        comp = -0.5 * (jnp.sum(proj ** 2 / v + jnp.log(v), -1) + d * jnp.log(2 * jnp.pi))
        comp = comp + jnp.log(self.weights)
        logp = jax.scipy.special.logsumexp(comp, axis=-1)
        resp = jnp.exp(comp - logp[:, None])                                      # [n, K]
        grads = -jnp.einsum("kij,nkj->nki", u, proj / v)                          # -P_k diff
        return logp, jnp.einsum("nk,nki->ni", resp, grads)

    def marginal_logpdf(self, sde, x, t):
        """``log p_t(x)`` per example for ``x [n, ...]`` and per-example (or scalar) ``t``."""
        alpha, std = sde.marginal_coeffs(_per_example(t, x))
        return self._log_components(x.reshape(x.shape[0], -1), alpha, std)[0]

    def score(self, sde, x, t):
        """The exact score ``grad_x log p_t(x)``, shaped like ``x``."""
        alpha, std = sde.marginal_coeffs(_per_example(t, x))
        return self._log_components(x.reshape(x.shape[0], -1), alpha, std)[1].reshape(x.shape)

    def score_fn(self, sde):
        """``score_fn(x, t)`` closure for the samplers and the likelihood."""
        return lambda x, t: self.score(sde, x, t)

    def mean_cov(self):
        """Mean ``[d]`` and covariance ``[d, d]`` of the mixture."""
        mean = jnp.einsum("k,ki->i", self.weights, self.means)
        centred = self.means - mean
        cov = jnp.einsum("k,kij->ij", self.weights, self.covs + centred[:, :, None] * centred[:, None, :])
        return mean, cov
