"""2D toy data for density models: a shared array signature for every toy set, the generating
mixture of ``gaussian_mixture`` data, and reference densities (exact or KDE) on a grid — the
"true density" panels and NLL references of Song et al. 2021-style 2D experiments."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dl_course import data as data_lib
from dl_course.data.dataset import make_dataset
from dl_course.generative.analytic import GaussianMixture


def density_only(data: data_lib.Dataset) -> data_lib.Dataset:
    """The same inputs with all-zero float targets ``[n, 1]`` (a score task ignores ``y``), so that
    every toy set has the same array signature and shares one compiled training program."""
    return make_dataset(data.x_train, np.zeros((data.n_train, 1)), data.x_test, np.zeros((len(data.x_test), 1)),
                        0, data.name, dict(data.info))


def true_mixture(data: data_lib.Dataset) -> GaussianMixture:
    """The generating mixture ``p = Σ_k w_k N(μ_k, s² I)`` of ``gaussian_mixture`` data, from ``data.info``."""
    info = data.info
    centers = np.asarray(info["centers"], np.float32)
    covs = np.broadcast_to(np.eye(2, dtype=np.float32) * info["std"] ** 2, (len(centers), 2, 2))
    return GaussianMixture.from_covs(np.asarray(info["weights"], np.float32), centers, covs)


def reference_logpdf(name: str, data: data_lib.Dataset, options: dict, points: np.ndarray, num_kde: int = 50_000):
    """``log p`` of the data distribution at ``points``: exact for the mixture, else a Gaussian KDE
    ``p̂(x) = (1/n) Σ_i N(x; x_i, H)`` with Scott's bandwidth ``H`` (``scipy.stats.gaussian_kde``)
    of ``num_kde`` fresh draws of the generator (a different seed from the data)."""
    if name == "gaussian_mixture":
        return np.asarray(true_mixture(data).logpdf(jnp.asarray(points)))
    from scipy.stats import gaussian_kde

    fresh = data_lib.load(name, **{**options, "n_train": num_kde, "n_test": 10, "seed": 12345}).x_train
    return gaussian_kde(fresh.T).logpdf(points.T)


def grid_points(lim, num: int) -> tuple[np.ndarray, np.ndarray]:
    """``num x num`` grid on ``lim x lim``: the axis and the ``[num^2, 2]`` points (row-major in y)."""
    g = np.linspace(lim[0], lim[1], num, dtype=np.float32)
    xx, yy = np.meshgrid(g, g)
    return g, np.stack([xx.ravel(), yy.ravel()], -1)
