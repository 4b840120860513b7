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
import numpy as np
from flax import struct

from dl_course.generative.baselines import level_probabilities
from dl_course.generative.likelihood import grid_index, level_values
from dl_course.generative.sde import time_per_example


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
        alpha, std = sde.marginal_coeffs(time_per_example(t, x))
        return self._log_components(x.reshape(x.shape[0], -1), alpha, std)[0]

    def score(self, sde, x, t):
        """The exact score ``grad_x log p_t(x)``, shaped like ``x``."""
        alpha, std = sde.marginal_coeffs(time_per_example(t, x))
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


@struct.dataclass
class FactorizedMixture:
    """Independent coordinates, coordinate ``i`` a 1-D mixture ``sum_k weights[i, k] N(means[i, k],
    stds[i, k]^2)``: ``p(x) = prod_i p_i(x_i)``, a mixture of ``K^D`` Gaussians that costs ``D K``.

    With narrow components centred on ``K`` grid levels this is the analytic stand-in for sharply
    peaked, dequantised image data (pixels near ``K`` intensity levels), the hard case of the
    probability-flow likelihood. Under a linear SDE each coordinate stays a 1-D mixture,

        p_t,i = sum_k w_ik N(alpha mu_ik, alpha^2 s_ik^2 + std^2),

    so ``log p_t`` is a sum of ``D`` log-sum-exps and the score is coordinate-wise
    ``sum_k r_ik (alpha mu_ik - x_i) / v_ik`` (responsibilities ``r``, variances ``v``).

    ``rotation`` (an orthogonal ``[D, D]`` matrix ``R``, optional) rotates the data, ``x = R y``
    with ``y`` factorised: ``log p(x) = log p_y(R^T x)`` and ``score(x) = R score_y(R^T x)``, still
    exact under the isotropic kernels of VE/VP/sub-VP; the score's Jacobian is then no longer
    diagonal (a diagonal one makes Hutchinson's Rademacher estimate exact, hiding its variance).
    Attributes: ``weights``, ``means``, ``stds``, each ``[D, K]``, weights summing to 1 over ``K``;
    ``rotation`` ``[D, D]`` or None.
    """

    weights: jax.Array
    means: jax.Array
    stds: jax.Array
    rotation: jax.Array | None = None

    @classmethod
    def level_histogram(cls, x_train, num_levels: int, low=0.0, high=1.0, alpha: float = 1.0):
        """Per-pixel histograms of grid-valued images ``x_train [n, ...]`` as point masses on the
        ``K`` levels ``low + k (high - low) / (K - 1)``: weights ``(n_ik + alpha) / (n + K alpha)``
        (add-alpha smoothing, as ``baselines.histogram_log_prob``), zero widths. Diffused by a linear
        SDE this is exactly the independent-pixel model at time ``t`` (a ``K``-component 1-D mixture
        per pixel), whose score is the base of a score network (``losses.make_score_fn(base=...)``):
        at small ``t`` it snaps every pixel to its levels, the sawtooth a network finds hardest."""
        k = np.asarray(grid_index(jnp.asarray(x_train).reshape(len(x_train), -1), num_levels, low, high))
        d = k.shape[1]
        weights = jnp.asarray(level_probabilities(k, num_levels, alpha), jnp.float32)
        means = jnp.broadcast_to(level_values(num_levels, low, high), (d, num_levels))
        return cls(weights, means, jnp.zeros((d, num_levels), jnp.float32))

    def _to_y(self, x):
        return x if self.rotation is None else x @ self.rotation       # rows: R^T x

    def _to_x(self, y):
        return y if self.rotation is None else y @ self.rotation.T     # rows: R y

    def sample(self, key, n):
        """``n`` i.i.d. draws, shape ``[n, D]``."""
        k_comp, k_noise = jax.random.split(key)
        d = self.weights.shape[0]
        comp = jax.random.categorical(k_comp, jnp.log(self.weights), axis=-1, shape=(n, d))
        pick = lambda a: jnp.take_along_axis(a[None], comp[..., None], axis=-1)[..., 0]
        y = pick(self.means) + pick(self.stds) * jax.random.normal(k_noise, (n, d), self.means.dtype)
        return self._to_x(y)

    def _log_and_score(self, x, alpha, std):
        """``log p_t(x) [n]`` and the score ``[n, D]`` for ``x [n, D]``, per-example ``alpha, std``."""
        x = self._to_y(x)
        a, s = alpha[:, None, None], std[:, None, None]
        v = a ** 2 * self.stds[None] ** 2 + s ** 2                               # [n, D, K]
        diff = x[:, :, None] - a * self.means[None]
        comp = jnp.log(self.weights[None]) - 0.5 * (diff ** 2 / v + jnp.log(2 * jnp.pi * v))
        logp_i = jax.scipy.special.logsumexp(comp, axis=-1)                       # [n, D]
        resp = jnp.exp(comp - logp_i[..., None])
        return jnp.sum(logp_i, -1), self._to_x(jnp.sum(resp * (-diff / v), -1))

    def logpdf(self, x):
        """``log p(x)`` per example, ``x [n, D]``."""
        one = jnp.ones(x.shape[:1], x.dtype)
        return self._log_and_score(x, one, 0.0 * one)[0]

    def marginal_logpdf(self, sde, x, t):
        """``log p_t(x)`` per example for ``x [n, ...]`` and per-example (or scalar) ``t``."""
        alpha, std = sde.marginal_coeffs(time_per_example(t, x))
        return self._log_and_score(x.reshape(x.shape[0], -1), alpha, std)[0]

    def score(self, sde, x, t):
        """The exact score ``grad_x log p_t(x)``, shaped like ``x``."""
        alpha, std = sde.marginal_coeffs(time_per_example(t, x))
        return self._log_and_score(x.reshape(x.shape[0], -1), alpha, std)[1].reshape(x.shape)

    def score_fn(self, sde):
        """``score_fn(x, t)`` closure for the samplers and the likelihood."""
        return lambda x, t: self.score(sde, x, t)
