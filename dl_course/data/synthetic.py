"""Synthetic datasets with known structure, generated with a seeded numpy Generator.

* ``separable``: two Gaussian classes in ``dim`` dimensions, linearly separable through the origin
  with a guaranteed geometric margin (Soudry et al. 2018 setting: linear model without bias).
* ``moons``: scikit-learn's two interleaving half circles.
* ``teacher``: regression targets from a random one-hidden-layer tanh teacher network.
* ``gaussian_mixture``, ``swiss_roll``: 2D densities for score-based generative models.
"""

from __future__ import annotations

import numpy as np

from dl_course.data.dataset import Dataset, make_dataset


def load_separable(n_train: int = 100, n_test: int = 1000, dim: int = 2, margin: float = 0.2,
                   mean_distance: float = 2.0, anisotropy: float = 1.0, seed: int = 0) -> Dataset:
    """Two Gaussian classes, separable by a hyperplane through the origin with margin ``margin``.

    Class ``c in {0, 1}`` (sign ``s = 2c - 1``) has mean ``s * mean_distance/2 * u`` with
    ``u = e_1`` and covariance ``diag(1, anisotropy, ..., anisotropy)``; points with
    ``s * <u, x> < margin`` are rejected and redrawn, so ``min_i s_i <u, x_i> >= margin``: the data
    is separable through the origin with geometric margin at least ``margin`` along ``u``. (The
    max-margin direction itself is generally not ``u``; compute it with an SVM.) With
    ``dim > n_train`` this is the high-dimensional regime of Soudry et al.
    """
    rng = np.random.default_rng(seed)
    if margin < 0 or dim < 1:
        raise ValueError(f"separable needs margin >= 0 and dim >= 1, got margin={margin}, dim={dim}")
    scales = np.full(dim, np.sqrt(anisotropy), dtype=np.float64)
    scales[0] = 1.0

    def draw(n):
        y = rng.integers(0, 2, size=n)
        x = np.empty((n, dim))
        filled = 0
        while filled < n:
            s = 2 * y[filled:] - 1
            cand = rng.normal(size=(n - filled, dim)) * scales
            cand[:, 0] += s * mean_distance / 2
            ok = s * cand[:, 0] >= margin
            k = int(ok.sum())
            x[filled:filled + k] = cand[ok]
            y[filled:filled + k] = y[filled:][ok]
            filled += k
        return x, y

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    info = {"margin_along_e1": margin, "mean_distance": mean_distance, "anisotropy": anisotropy,
            "dim": dim, "seed": seed, "bias": "none: separable through the origin"}
    return make_dataset(x_tr, y_tr, x_te, y_te, 2, "separable", info)


def load_moons(n_train: int = 500, n_test: int = 1000, noise: float = 0.1, seed: int = 0) -> Dataset:
    """scikit-learn's ``make_moons`` (two classes, 2D), independent train and test draws."""
    from sklearn.datasets import make_moons

    x_tr, y_tr = make_moons(n_train, noise=noise, random_state=seed)
    x_te, y_te = make_moons(n_test, noise=noise, random_state=seed + 10_000)
    return make_dataset(x_tr, y_tr, x_te, y_te, 2, "moons", {"noise": noise, "seed": seed})


def load_teacher(n_train: int = 256, n_test: int = 1024, dim: int = 10, width: int = 32, out_dim: int = 1,
                 noise: float = 0.0, seed: int = 0) -> Dataset:
    """Regression on ``y = a^T tanh(W x / sqrt(dim)) / sqrt(width) + noise``, ``x ~ N(0, I)``.

    The teacher weights ``W, a`` are standard normal, drawn from ``seed``; ``noise`` is the std of
    Gaussian label noise on the training targets only (test targets are noiseless).
    """
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(dim, width))
    a = rng.normal(size=(width, out_dim))

    def f(x):
        return np.tanh(x @ w / np.sqrt(dim)) @ a / np.sqrt(width)

    x_tr = rng.normal(size=(n_train, dim))
    x_te = rng.normal(size=(n_test, dim))
    y_tr = f(x_tr) + noise * rng.normal(size=(n_train, out_dim))
    y_te = f(x_te)
    info = {"dim": dim, "teacher_width": width, "label_noise_std": noise, "seed": seed}
    return make_dataset(x_tr, y_tr, x_te, y_te, 0, "teacher", info)


def load_gaussian_mixture(n_train: int = 5000, n_test: int = 2000, num_modes: int = 8, radius: float = 4.0,
                          std: float = 0.3, weights=None, seed: int = 0) -> Dataset:
    """Mixture of ``num_modes`` isotropic 2D Gaussians on a circle of ``radius``.

    ``y`` holds the component index of each sample (float32, shape ``[n, 1]``; num_classes 0 since
    this is a density-estimation set). ``weights`` default to uniform.
    """
    rng = np.random.default_rng(seed)
    w = np.full(num_modes, 1.0 / num_modes) if weights is None else np.asarray(weights, float) / np.sum(weights)
    angles = 2 * np.pi * np.arange(num_modes) / num_modes
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], -1)

    def draw(n):
        c = rng.choice(num_modes, size=n, p=w)
        return centers[c] + std * rng.normal(size=(n, 2)), c[:, None]

    x_tr, c_tr = draw(n_train)
    x_te, c_te = draw(n_test)
    info = {"num_modes": num_modes, "radius": radius, "std": std, "weights": w.tolist(), "seed": seed,
            "centers": centers.tolist()}
    return make_dataset(x_tr, c_tr, x_te, c_te, 0, "gaussian_mixture", info)


def load_swiss_roll(n_train: int = 5000, n_test: int = 2000, noise: float = 0.5, scale: float = 0.25,
                    seed: int = 0) -> Dataset:
    """2D swiss roll (the x-z plane of scikit-learn's ``make_swiss_roll``), scaled by ``scale``.

    ``y`` holds the roll's position parameter (float32 ``[n, 1]``).
    """
    from sklearn.datasets import make_swiss_roll

    x_tr, t_tr = make_swiss_roll(n_train, noise=noise, random_state=seed)
    x_te, t_te = make_swiss_roll(n_test, noise=noise, random_state=seed + 10_000)
    x_tr, x_te = x_tr[:, [0, 2]] * scale, x_te[:, [0, 2]] * scale
    info = {"noise": noise, "scale": scale, "seed": seed}
    return make_dataset(x_tr, t_tr[:, None], x_te, t_te[:, None], 0, "swiss_roll", info)
