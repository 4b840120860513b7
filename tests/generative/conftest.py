"""Shared ground truth for the generative tests: a correlated 2D Gaussian and Monte Carlo checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.generative import GaussianMixture

MEAN = np.array([1.0, -0.5])
COV = np.array([[1.0, 0.6], [0.6, 0.8]])


@pytest.fixture
def gaussian():
    """Data distribution N(MEAN, COV): non-zero mean and correlated, unequal variances, so that a
    sampler with a wrong drift, scale or sign fails in mean or covariance."""
    return GaussianMixture.gaussian(jnp.asarray(MEAN, jnp.float32), jnp.asarray(COV, jnp.float32))


def moment_errors(x, mean, cov):
    """Errors of the sample mean and covariance of ``x [n, d]`` in units of their standard errors.

    Standard errors for Gaussian samples: ``sqrt(C_ii / n)`` for the mean and
    ``sqrt((C_ii C_jj + C_ij^2) / n)`` for the covariance entries (Anderson 2003, Thm. 3.4.4).
    """
    x = np.asarray(x, np.float64)
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    n = x.shape[0]
    se_mean = np.sqrt(np.diag(cov) / n)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
    return (x.mean(0) - mean) / se_mean, (np.cov(x.T) - cov) / se_cov


@pytest.fixture
def assert_moments():
    """Assert that sample mean and covariance match within ``k`` standard errors (default 5)."""
    def check(x, mean, cov, k=5.0, label=""):
        z_mean, z_cov = moment_errors(x, mean, cov)
        assert np.all(np.isfinite(z_mean)) and np.all(np.isfinite(z_cov)), label
        assert np.max(np.abs(z_mean)) < k, f"{label}: mean off by {z_mean} standard errors"
        assert np.max(np.abs(z_cov)) < k, f"{label}: covariance off by {z_cov} standard errors"
    return check


@pytest.fixture
def numpy_init():
    """Initial parameters drawn with numpy in the structure of ``model.init`` (via ``eval_shape``).

    flax's initialisers compile one PRNG program per parameter tensor, which costs seconds per model
    on a CPU runner; these tests need valid parameters, not flax's exact initial distribution.
    Kernels are N(0, 1/fan_in) (LeCun normal), biases 0, normalisation scales 1.
    """
    def init(model, *args, seed=0):
        shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), *args))["params"]
        rng = np.random.default_rng(seed)

        def draw(path, leaf):
            name = path[-1].key
            if name == "kernel":
                fan_in = int(np.prod(leaf.shape[:-1]))
                return jnp.asarray(rng.normal(size=leaf.shape) / np.sqrt(fan_in), leaf.dtype)
            return jnp.full(leaf.shape, 1.0 if name == "scale" else 0.0, leaf.dtype)

        return jax.tree_util.tree_map_with_path(draw, shapes)
    return init
