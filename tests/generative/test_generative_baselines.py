"""Density baselines against independent closed-form computations (histogram counts by hand, scipy's
Gaussian log-density, the probabilistic-PCA likelihood from an eigendecomposition)."""

import numpy as np
import pytest
import scipy.stats

from dl_course.generative.baselines import (
    BASELINES,
    baseline_bits_per_dim,
    gaussian_log_prob,
    gmm_log_prob,
    histogram_log_prob,
    pca_gaussian_log_prob,
)

K, D = 5, 6


def _levels(seed, n):
    """Integer images ``[n, 2, 3]`` with pixel-dependent level frequencies (pixel 0 never above 2)."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(K), size=D)
    probs[0] = [0.5, 0.3, 0.2, 0.0, 0.0]
    return np.stack([rng.choice(K, size=n, p=p) for p in probs], axis=1).reshape(n, 2, 3)


def _dequantize(k, low, high, seed):
    """``low + (high - low) (k + u) / K`` with numpy noise (an independent implementation)."""
    u = np.random.default_rng(seed).uniform(size=k.shape)
    return low + (high - low) * (k + u) / K


def test_histogram_bits_per_dim_equals_the_discrete_closed_form():
    """On dequantised data the histogram's bits/dim is exactly the discrete code length
    -mean_n sum_i log2((c_i(k) + 1) / (n + K)) / D, counts c_i(k) by hand, whatever the scaling
    (both [0, 1] and [-1, 1]) and whatever the dequantisation noise (float64 to 1e-6 relative;
    the conversion goes through float32)."""
    k_train, k_test = _levels(0, 300), _levels(1, 100)
    n = len(k_train)
    flat_tr, flat_te = k_train.reshape(n, -1), k_test.reshape(len(k_test), -1)
    code = np.zeros(len(k_test))
    for i in range(D):
        counts = np.array([np.sum(flat_tr[:, i] == k) for k in range(K)])
        code += -np.log2((counts[flat_te[:, i]] + 1.0) / (n + K))
    expected = code.mean() / D
    for low, high in ((0.0, 1.0), (-1.0, 1.0)):
        for seed in (2, 3):
            y_tr, y_te = _dequantize(k_train, low, high, seed), _dequantize(k_test, low, high, seed + 10)
            bpd = baseline_bits_per_dim(y_tr, y_te, K, low, high, names=["histogram", "uniform"])
            np.testing.assert_allclose(bpd["histogram"], expected, rtol=1e-6)
            assert bpd["uniform"] == pytest.approx(np.log2(K))
    # a level never seen in training keeps a finite probability (add-one smoothing)
    y_te = _dequantize(np.full((1, 2, 3), K - 1), 0.0, 1.0, 0)
    assert np.isfinite(histogram_log_prob(_dequantize(k_train, 0.0, 1.0, 2), y_te, K)).all()


def test_continuous_baselines_against_closed_forms():
    """Gaussian MLE = scipy's multivariate normal at the biased sample covariance; PPCA = the
    Tipping & Bishop MLE density N(mean, W W^T + s^2 I) built from the eigendecomposition of the
    sample covariance; a one-component GMM = the Gaussian (up to EM's reg_covar 1e-6 on the
    diagonal: tolerance 1e-4 nats). float64 throughout."""
    rng = np.random.default_rng(4)
    a = rng.normal(size=(D, D))
    x_tr = rng.normal(size=(400, D)) @ a + 1.0
    x_te = rng.normal(size=(50, D)) @ a + 1.0
    mean, cov = x_tr.mean(0), np.cov(x_tr, rowvar=False, bias=True)
    np.testing.assert_allclose(gaussian_log_prob(x_tr, x_te), scipy.stats.multivariate_normal(mean, cov).logpdf(x_te),
                               rtol=1e-10)
    q = 2
    lam, u = np.linalg.eigh(cov)
    lam, u = lam[::-1], u[:, ::-1]
    s2 = lam[q:].mean()
    w = u[:, :q] * np.sqrt(lam[:q] - s2)
    ppca = scipy.stats.multivariate_normal(mean, w @ w.T + s2 * np.eye(D)).logpdf(x_te)
    np.testing.assert_allclose(pca_gaussian_log_prob(x_tr, x_te, num_components=q), ppca, rtol=1e-8)
    np.testing.assert_allclose(gmm_log_prob(x_tr, x_te, num_components=1), gaussian_log_prob(x_tr, x_te), atol=1e-4)


def test_unknown_baseline_raises():
    with pytest.raises(ValueError, match=", ".join(sorted(BASELINES))):
        baseline_bits_per_dim(np.zeros((2, 3)), np.zeros((2, 3)), 4, names=["kde"])
