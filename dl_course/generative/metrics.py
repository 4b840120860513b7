"""Sample-quality metrics: distances between generated samples and held-out data.

* ``mmd2``: unbiased squared maximum mean discrepancy with an RBF kernel (Gretton et al. 2012,
  JMLR, Eq. (3)); bandwidth by the median heuristic unless given.
* ``sliced_wasserstein``: ``SW_p = (E_theta W_p^p(theta^T X, theta^T Y))^(1/p)`` over uniform
  directions on the sphere (Rabin et al. 2011; Bonneel et al. 2015), each 1D ``W_p`` exact between
  the two empirical measures (sample sizes may differ).
* ``frechet_distance``: ``||mu_x - mu_y||^2 + tr(C_x + C_y - 2 (C_x^1/2 C_y C_x^1/2)^1/2)``, the
  2-Wasserstein distance between Gaussians fitted to features (Heusel et al. 2017, "FID").
* ``kernel_inception_distance``: the unbiased MMD^2 between features with the cubic polynomial kernel
  ``k(a, b) = (a.b / d + 1)^3`` (Binkowski et al. 2018, "Demystifying MMD GANs", "KID"): unbiased
  at every sample size, unlike the Frechet distance, whose plug-in estimate is biased upwards by
  ``O(d / n)``.
* ``classifier_score``: an Inception-Score-style number ``exp(E_x KL(p(y|x) || p(y)))`` (Salimans et
  al. 2016) computed with *a classifier you supply* (for the digits studies, a small CNN trained with
  this codebase on the digits training set -- not the Inception network, so the numbers are not
  comparable with published IS/FID values). It lies in ``[1, num_classes]``; higher means confident
  and class-balanced samples.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import linalg


def _flat(x):
    return x.reshape(x.shape[0], -1)


def _sq_dists(a, b):
    return jnp.maximum(jnp.sum(a ** 2, -1)[:, None] + jnp.sum(b ** 2, -1)[None, :] - 2.0 * a @ b.T, 0.0)


def median_bandwidth(x, y):
    """Median heuristic: the median pairwise Euclidean distance within the pooled sample (i != j)."""
    z = jnp.concatenate([_flat(x), _flat(y)])
    n = z.shape[0]
    rows, cols = np.triu_indices(n, k=1)  # static indices: the distance matrix is symmetric
    return jnp.median(jnp.sqrt(_sq_dists(z, z)[rows, cols]))


def mmd2(x, y, bandwidths=None):
    """Unbiased MMD^2 between samples ``x [n, ...]`` and ``y [m, ...]`` (Gretton et al. 2012).

    Kernel ``k(a, b) = sum_h exp(-||a - b||^2 / (2 h^2))`` over ``bandwidths`` (a scalar or a
    vector; default the median heuristic). ``E[mmd2] = MMD^2(P, Q)``, which is 0 iff P = Q for this
    characteristic kernel; the estimate can be slightly negative.
    """
    x, y = _flat(x), _flat(y)
    n, m = x.shape[0], y.shape[0]
    h = median_bandwidth(x, y) if bandwidths is None else jnp.asarray(bandwidths, x.dtype)
    h = jnp.atleast_1d(h)

    def k(a, b):
        return jnp.sum(jnp.exp(-_sq_dists(a, b)[..., None] / (2.0 * h ** 2)), axis=-1)

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    term_x = (jnp.sum(kxx) - jnp.trace(kxx)) / (n * (n - 1))
    term_y = (jnp.sum(kyy) - jnp.trace(kyy)) / (m * (m - 1))
    return term_x + term_y - 2.0 * jnp.mean(kxy)


def wasserstein_1d(u, v, p: float = 2.0):
    """Exact ``W_p^p`` between the empirical measures of ``u [n]`` and ``v [m]`` on the line:
    ``int_0^1 |F_u^-1(q) - F_v^-1(q)|^p dq`` over the merged breakpoints ``i/n``, ``j/m``."""
    n, m = u.shape[0], v.shape[0]
    u, v = jnp.sort(u), jnp.sort(v)
    q = jnp.sort(jnp.concatenate([jnp.arange(1, n + 1) / n, jnp.arange(1, m + 1) / m]).astype(u.dtype))
    widths = jnp.diff(q, prepend=0.0)
    mid = q - widths / 2
    iu = jnp.clip(jnp.floor(mid * n).astype(jnp.int32), 0, n - 1)
    iv = jnp.clip(jnp.floor(mid * m).astype(jnp.int32), 0, m - 1)
    return jnp.sum(widths * jnp.abs(u[iu] - v[iv]) ** p)


def sliced_wasserstein(x, y, key, num_projections: int = 256, p: float = 2.0):
    """Monte Carlo sliced Wasserstein distance ``SW_p(x, y)`` with ``num_projections`` directions."""
    x, y = _flat(x), _flat(y)
    dirs = jax.random.normal(key, (num_projections, x.shape[1]), x.dtype)
    dirs = dirs / jnp.linalg.norm(dirs, axis=-1, keepdims=True)
    wp = jax.vmap(lambda th: wasserstein_1d(x @ th, y @ th, p))(dirs)
    return jnp.mean(wp) ** (1.0 / p)


def _psd_sqrt(c):
    lam, u = linalg.eigh(c)
    return (u * jnp.sqrt(jnp.clip(lam, 0.0))) @ u.T


def frechet_distance(feat_x, feat_y):
    """Squared Frechet distance between Gaussians fitted to ``feat_x [n, k]`` and ``feat_y [m, k]``.

    ``tr (C_x C_y)^1/2`` is computed as ``sum sqrt(eig(C_x^1/2 C_y C_x^1/2))`` (a symmetric PSD
    matrix with the same eigenvalues), so no non-symmetric matrix square root is needed.
    """
    mx, my = jnp.mean(feat_x, 0), jnp.mean(feat_y, 0)
    cx, cy = jnp.cov(feat_x, rowvar=False), jnp.cov(feat_y, rowvar=False)
    cx, cy = jnp.atleast_2d(cx), jnp.atleast_2d(cy)
    sx = _psd_sqrt(cx)
    cross = jnp.sum(jnp.sqrt(jnp.clip(linalg.eigh(sx @ cy @ sx)[0], 0.0)))
    return jnp.sum((mx - my) ** 2) + jnp.trace(cx) + jnp.trace(cy) - 2.0 * cross


def kernel_inception_distance(feat_x, feat_y, degree: int = 3, coef0: float = 1.0):
    """Unbiased squared MMD with the polynomial kernel ``k(a, b) = (a.b / d + coef0)^degree``
    between ``feat_x [n, d]`` and ``feat_y [m, d]`` (Binkowski et al. 2018, Eq. (4) with their
    kernel; the KID of Inception features):

        KID = sum_{i != j} k(x_i, x_j) / (n (n - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
              - 2 sum_{i, j} k(x_i, y_j) / (n m).

    ``E[KID] = MMD^2(P, Q) >= 0`` for any ``n, m >= 2`` (the estimate itself can be slightly
    negative). The paper averages it over subsets of 1000; here it is computed on the whole sets.
    """
    x, y = _flat(jnp.asarray(feat_x)), _flat(jnp.asarray(feat_y))
    n, m, d = x.shape[0], y.shape[0], x.shape[1]
    k = lambda a, b: (a @ b.T / d + coef0) ** degree
    kxx, kyy = k(x, x), k(y, y)
    term_x = (jnp.sum(kxx) - jnp.trace(kxx)) / (n * (n - 1))
    term_y = (jnp.sum(kyy) - jnp.trace(kyy)) / (m * (m - 1))
    return term_x + term_y - 2.0 * jnp.mean(k(x, y))


def classifier_score(logits_fn: Callable, samples):
    """Inception-Score-style statistics of ``samples`` under a classifier ``logits_fn(x) -> [n, C]``.

    Returns a dict: ``classifier_score = exp(mean_x KL(p(y|x) || p_bar(y)))`` with
    ``p_bar = mean_x p(y|x)`` (Salimans et al. 2016); ``mean_confidence = mean_x max_y p(y|x)``;
    ``class_entropy = H(p_bar)`` in nats (``log C`` when balanced); ``class_frequencies = p_bar``.
    See the module docstring for what the classifier is and is not.
    """
    log_p = jax.nn.log_softmax(logits_fn(samples), axis=-1)
    p = jnp.exp(log_p)
    p_bar = jnp.mean(p, axis=0)
    log_p_bar = jnp.log(jnp.clip(p_bar, 1e-30))
    kl = jnp.sum(p * (log_p - log_p_bar), axis=-1)
    return {
        "classifier_score": jnp.exp(jnp.mean(kl)),
        "mean_confidence": jnp.mean(jnp.max(p, axis=-1)),
        "class_entropy": -jnp.sum(p_bar * log_p_bar),
        "class_frequencies": p_bar,
    }
