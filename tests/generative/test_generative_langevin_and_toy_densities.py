"""Plain Langevin dynamics against the closed-form stationary law of the unadjusted Langevin
algorithm on a Gaussian, nearest-mean mode fractions, and the 2D reference densities."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import data as data_lib
from dl_course.data import toy_densities
from dl_course.generative.langevin import langevin_dynamics, mode_fractions


def test_langevin_dynamics_reaches_the_ula_stationary_variance():
    """For log p = -x^2/2 the chain x' = (1 - eps/2) x + sqrt(eps) z is Gaussian with stationary
    variance 1 / (1 - eps/4) (= 1.0256 at eps = 0.1, the discretisation bias of ULA). From x = 3,
    300 steps contract the initial offset by (0.95)^300 ~ 2e-7; 20 000 chains give the variance to
    ~1% (sd of a sample variance: sqrt(2/n) = 0.01): 3.5% tolerance."""
    x0 = jnp.full((20000, 1), 3.0)
    x, means = langevin_dynamics(lambda x: -x, x0, jax.random.key(0), 0.1, 300, 100, lambda x: jnp.mean(x))
    assert means.shape == (4,) and float(means[0]) == 3.0
    np.testing.assert_allclose(float(jnp.var(x)), 1 / (1 - 0.1 / 4), rtol=0.035)
    assert abs(float(means[-1])) < 0.03                    # mean forgotten (sd 0.007)


def test_mode_fractions_count_the_nearest_mean():
    means = jnp.array([[-5.0, -5.0], [5.0, 5.0]])
    x = jnp.array([[-1.0, -0.5], [0.2, 0.0], [-6.0, 4.0], [3.0, 3.0]])
    np.testing.assert_allclose(mode_fractions(means, x), [0.5, 0.5])
    np.testing.assert_allclose(mode_fractions(means, x[:1]), [1.0, 0.0])


def test_reference_densities_are_normalised():
    """The exact mixture density and the KDE both integrate to ~1 over a grid that covers the data
    (Riemann sum on an 80^2 grid; 2% tolerance covers the grid error and the mass outside)."""
    for name, options in (("gaussian_mixture", {"n_train": 200, "n_test": 10}),
                          ("moons", {"n_train": 200, "n_test": 10})):
        data = data_lib.load(name, **options)
        g, pts = toy_densities.grid_points((-6.0, 6.0), 80)
        logp = toy_densities.reference_logpdf(name, data, options, pts, num_kde=1000)
        mass = np.exp(logp).sum() * (g[1] - g[0]) ** 2
        assert abs(mass - 1.0) < 0.02, (name, mass)
    same = toy_densities.density_only(data_lib.load("moons", n_train=20, n_test=10))
    assert same.num_classes == 0 and same.y_train.shape == (20, 1) and same.x_train.shape == (20, 2)
