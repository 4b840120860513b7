"""Simple density baselines in bits per dimension on uniformly dequantised discrete data.

A generative model's bits/dim means something only next to what trivial models reach on the same
data with the same dequantisation. Every baseline here is fitted by maximum likelihood on the
training images and scored on the test images, both in the convention of
``dl_course.generative.likelihood``: pixels stored on the grid ``low + (high - low) k / (K - 1)``,
dequantised by ``dequantize`` to ``y = low + (high - low) (k + u) / K``, ``u ~ U[0, 1)``, a density
``log p(y)`` (nats) converted by ``bits_per_dim(log p, D, K, low, high)``. Continuous baselines are
fitted to dequantised training images (as the score model is) and scored on dequantised test images.

* ``histogram``: independent pixels, ``p(k_i)`` a categorical per pixel with add-``alpha``
  smoothing; on dequantised data the density is piecewise constant, ``p(y) = prod_i p_i(k_i) / a``
  with bin width ``a = (high - low) / K``, so its bits/dim is the discrete one, ``-mean sum_i
  log2 p_i(k_i) / D``, exactly.
* ``gaussian``: one full-covariance Gaussian, the MLE ``N(mean, cov)``.
* ``gmm``: a mixture of full-covariance Gaussians fitted by EM (``sklearn.mixture.GaussianMixture``;
  Dempster, Laird & Rubin 1977).
* ``pca_gaussian``: probabilistic PCA (Tipping & Bishop 1999), ``N(mean, W W^T + s^2 I)`` with ``q``
  principal directions, ``W = U_q (L_q - s^2 I)^(1/2)`` and ``s^2`` the mean of the discarded
  eigenvalues of the sample covariance (the MLE).
* ``uniform``: ``log2 K`` bits/dim, the density ``1 / (high - low)^D``.

Everything runs on the host (numpy / scikit-learn): baselines are fitted once per study, not traced.
"""

from __future__ import annotations

import numpy as np

from dl_course.generative.likelihood import bits_per_dim


def _flat(x):
    x = np.asarray(x, np.float64)
    return x.reshape(len(x), -1)


def bin_index(x, num_levels: int, low=0.0, high=1.0):
    """The level ``k in {0..K-1}`` of each pixel of dequantised (``y``) data: ``floor((y - low) K /
    (high - low))``, clipped to the grid."""
    k = np.floor((np.asarray(x, np.float64) - low) * num_levels / (high - low))
    return np.clip(k, 0, num_levels - 1).astype(np.int64)


def level_probabilities(k, num_levels: int, alpha: float = 1.0):
    """Per-pixel add-alpha level frequencies ``(n_ik + alpha) / (n + K alpha)`` ``[D, K]`` from integer
    levels ``k [n, D]`` (``alpha = 1``: the posterior mean under a uniform Dirichlet prior)."""
    n, d = k.shape
    counts = np.zeros((d, num_levels))
    np.add.at(counts, (np.broadcast_to(np.arange(d), k.shape), k), 1.0)
    return (counts + alpha) / (n + num_levels * alpha)


def histogram_log_prob(x_train, x_test, num_levels: int, low=0.0, high=1.0, alpha: float = 1.0):
    """Independent per-pixel histograms: ``log p(y) = sum_i [log p_i(k_i) - log a]`` per test example.

    ``p_i(k) = (n_ik + alpha) / (n + K alpha)`` from the counts ``n_ik`` of level ``k`` at pixel ``i``
    among the ``n`` training images (add-alpha / Laplace smoothing; ``alpha = 1``: the posterior mean
    under a uniform Dirichlet prior), ``a = (high - low) / K`` the bin width. ``x_train``, ``x_test``
    are dequantised (or on the grid: both give the same levels).
    """
    k_train = _flat(bin_index(x_train, num_levels, low, high)).astype(np.int64)
    k_test = _flat(bin_index(x_test, num_levels, low, high)).astype(np.int64)
    d = k_train.shape[1]
    log_p = np.log(level_probabilities(k_train, num_levels, alpha))                # [D, K]
    log_bin = np.log((high - low) / num_levels)
    return np.sum(log_p[np.arange(d), k_test], axis=-1) - d * log_bin


def gaussian_log_prob(x_train, x_test, ridge: float = 0.0):
    """Full-covariance Gaussian MLE: ``mean = mean_n x_n``, ``cov = (1/n) sum_n (x_n - mean)(x_n -
    mean)^T + ridge I``; returns ``log N(x; mean, cov)`` per test example (Cholesky)."""
    xt, xs = _flat(x_train), _flat(x_test)
    mean = xt.mean(0)
    cov = np.cov(xt, rowvar=False, bias=True) + ridge * np.eye(xt.shape[1])
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, (xs - mean).T)                                       # L^{-1} (x - mean)
    d = xt.shape[1]
    return -0.5 * (np.sum(z ** 2, 0) + d * np.log(2 * np.pi)) - np.sum(np.log(np.diag(chol)))


def gmm_log_prob(x_train, x_test, num_components: int = 10, seed: int = 0, reg_covar: float = 1e-6,
                 max_iter: int = 200):
    """Mixture ``sum_c w_c N(mu_c, C_c)`` with full covariances, fitted by EM (scikit-learn,
    k-means initialisation, ``reg_covar`` added to each diagonal); ``log p(x)`` per test example."""
    from sklearn.mixture import GaussianMixture as SkGMM

    gmm = SkGMM(num_components, covariance_type="full", reg_covar=reg_covar, max_iter=max_iter,
                random_state=seed).fit(_flat(x_train))
    return gmm.score_samples(_flat(x_test))


def pca_gaussian_log_prob(x_train, x_test, num_components: int = 16):
    """Probabilistic PCA (Tipping & Bishop 1999): ``log N(x; mean, W W^T + s^2 I)`` per test example
    at the MLE, ``W = U_q (L_q - s^2 I)^(1/2)``, ``s^2 = mean(L_{q+1..D})``, from the eigenpairs
    ``(L, U)`` of the (biased, 1/n) sample covariance. The model covariance has the eigenvectors
    ``U`` with eigenvalues ``L_1..L_q`` and ``s^2`` for the rest, which is how it is evaluated.
    (``sklearn``'s ``PCA.score_samples`` is the same model at the 1/(n-1) covariance.)"""
    xt, xs = _flat(x_train), _flat(x_test)
    mean = xt.mean(0)
    lam, u = np.linalg.eigh(np.cov(xt, rowvar=False, bias=True))
    lam, u = lam[::-1], u[:, ::-1]
    d = xt.shape[1]
    var = np.concatenate([lam[:num_components], np.full(d - num_components, lam[num_components:].mean())])
    proj = (xs - mean) @ u
    return -0.5 * (np.sum(proj ** 2 / var, -1) + np.sum(np.log(var)) + d * np.log(2 * np.pi))


BASELINES = {
    "histogram": histogram_log_prob,
    "gaussian": gaussian_log_prob,
    "gmm": gmm_log_prob,
    "pca_gaussian": pca_gaussian_log_prob,
}


def baseline_bits_per_dim(x_train, x_test, num_levels: int, low=0.0, high=1.0, *, names=None,
                          options: dict | None = None) -> dict:
    """Test bits/dim (mean over test examples) of the baselines ``names`` (default: all, plus
    ``uniform``) fitted on ``x_train``; both arrays dequantised (``dequantize``), any shape
    ``[n, ...]``. ``options`` maps a name to keyword arguments of its ``*_log_prob`` function.
    Unknown names raise ``ValueError``."""
    names = list(BASELINES) + ["uniform"] if names is None else list(names)
    bad = [n for n in names if n not in BASELINES and n != "uniform"]
    if bad:
        raise ValueError(f"unknown baselines {bad}; valid: {', '.join(sorted(BASELINES))}, uniform")
    options = options or {}
    d = _flat(x_test[:1]).shape[1]
    out = {}
    for name in names:
        if name == "uniform":
            out[name] = float(np.log2(num_levels))
            continue
        fn = BASELINES[name]
        extra = dict(num_levels=num_levels, low=low, high=high) if name == "histogram" else {}
        log_p = fn(x_train, x_test, **extra, **options.get(name, {}))
        out[name] = float(np.mean(np.asarray(bits_per_dim(log_p, d, num_levels, low, high))))
    return out
