"""Random ReLU features fitted by minimum-norm least squares (dl_course.models.random_features):
the block-accumulated kernel form against the pseudo-inverse at every feature count, the float64
curve over feature draws against per-draw primal fits by ``dl_course.linalg.lstsq``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course import linalg
from dl_course.models import random_features as rf


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _problem(n=24, d=10, m=9, k=3, num_features=60, seed=0):
    rng = np.random.default_rng(seed)
    x, xt = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    labels = np.arange(n) % k
    feats = rf.draw_features(jax.random.PRNGKey(seed), d, num_features, jnp.float64)
    return x, xt, labels, np.eye(k)[labels], feats


def test_feature_count_sweep_matches_pseudo_inverse_at_every_count(x64):
    """The dual (kernel) form accumulated over blocks equals Φ_p⁺ Y computed directly, for counts
    below, at and above n, with a block size that does not divide the counts; vmapped over two
    feature draws it equals the per-draw results."""
    x, xt, _, y, _ = _problem()
    counts = [3, 10, 23, 24, 25, 40, 60]
    feats = jax.vmap(lambda k: rf.draw_features(k, x.shape[1], 60, jnp.float64))(
        jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)]))
    fits = jax.jit(jax.vmap(lambda f: rf.feature_count_sweep(rf.ReluFeatures(*f), x, y, xt, counts, block=7)))(feats)
    for s in range(2):
        one = rf.ReluFeatures(feats.w[s], feats.b[s])
        for i, p in enumerate(counts):
            phi = np.asarray(rf.relu_features(one, x, p))
            beta = np.linalg.pinv(phi) @ y
            sv = np.linalg.svd(phi, compute_uv=False)
            cond = sv[0] / sv[sv > 1e-6 * sv[0]].min()  # over the singular values both keep
            # The kernel form squares the condition number: error ~ n·ε·cond(Φ)² relative.
            tol = max(1e-10, 1e-14 * cond**2)
            np.testing.assert_allclose(fits.test_pred[s, i], np.asarray(rf.relu_features(one, xt, p)) @ beta,
                                       atol=tol * np.abs(beta).max() * 10)
            np.testing.assert_allclose(fits.train_pred[s, i], phi @ beta, atol=tol * 10)
            np.testing.assert_allclose(fits.coef_norm[s, i], np.linalg.norm(beta), rtol=tol * 10)
            assert int(fits.rank[s, i]) == np.linalg.matrix_rank(phi)
    # Interpolation from p = n on: zero training residual.
    assert np.abs(fits.train_pred[:, counts.index(25)] - y).max() < 1e-6


def test_feature_count_sweep_rejects_bad_counts(x64):
    x, xt, _, y, feats = _problem()
    with pytest.raises(ValueError, match="strictly increasing"):
        rf.feature_count_sweep(feats, x, y, xt, [10, 5])
    with pytest.raises(ValueError, match="exceeds"):
        rf.feature_count_sweep(feats, x, y, xt, [10, 61])


def test_feature_count_curve_matches_primal_lstsq_per_draw(x64):
    """The curve's losses, errors and norms equal those of β̂ = lstsq(Φ_p, Y) (the primal SVD form
    of dl_course.linalg) for each draw and count away from p = n, where both forms are well
    conditioned (cond(Φ) < 1e3 here): float64, so 1e-8 relative covers the squared condition
    number of the kernel form."""
    x, xt, labels, y, _ = _problem()
    labels_t = np.arange(xt.shape[0]) % 3
    counts, seeds = [6, 60], [0, 1]
    curve = rf.feature_count_curve(x, labels, xt, labels_t, 3, counts, seeds, block=16)
    assert set(curve) == {"train_mse", "test_mse", "train_error", "test_error", "coef_norm", "rank"}
    with jax.enable_x64(True):
        for s_i, s in enumerate(seeds):
            feats = rf.draw_features(jax.random.PRNGKey(s), x.shape[1], 60, jnp.float64)
            for c_i, p in enumerate(counts):
                phi = rf.relu_features(feats, jnp.asarray(x), p)
                beta = np.asarray(linalg.lstsq(phi, jnp.asarray(y)))
                pred_t = np.asarray(rf.relu_features(feats, jnp.asarray(xt), p)) @ beta
                np.testing.assert_allclose(curve["coef_norm"][s_i, c_i], np.linalg.norm(beta), rtol=1e-8)
                np.testing.assert_allclose(curve["test_mse"][s_i, c_i],
                                           np.mean(np.sum((pred_t - np.eye(3)[labels_t]) ** 2, -1)), rtol=1e-8)
                # A fraction of 9 examples, stored in float32 (jnp.mean of booleans): 1e-6.
                np.testing.assert_allclose(curve["test_error"][s_i, c_i], np.mean(pred_t.argmax(-1) != labels_t),
                                           atol=1e-6)
    assert np.all(curve["train_mse"][:, 1] < 1e-12)  # p = 60 > n = 24 interpolates
