"""Noise-free function-approximation targets on ``[-1, 1]^d``: smooth and discontinuous 1D / 2D
functions (universality: the error-vs-width rate depends on the target's smoothness).

``sin1d = sin(2 pi x)``, ``square1d = sign(sin(2 pi x))`` (jumps), ``smooth2d = sin(pi x) cos(pi y)``,
``disk2d = +1 inside the disk r^2 < 1/2, -1 outside``. Training points uniform in the box, test
points on a regular grid.
"""

from __future__ import annotations

import numpy as np

from dl_course.data.dataset import make_dataset


def _sin1d(x):
    return np.sin(2 * np.pi * x[:, 0])

def _square1d(x):
    return np.sign(np.sin(2 * np.pi * x[:, 0]))

def _smooth2d(x):
    return np.sin(np.pi * x[:, 0]) * np.cos(np.pi * x[:, 1])

def _disk2d(x):
    return np.where(x[:, 0] ** 2 + x[:, 1] ** 2 < 0.5, 1.0, -1.0)

# name -> (input dimension, function, smooth?)
TARGETS = {"sin1d": (1, _sin1d, True), "square1d": (1, _square1d, False),
           "smooth2d": (2, _smooth2d, True), "disk2d": (2, _disk2d, False)}

def grid_points(d: int, per_axis: int) -> np.ndarray:
    """Regular grid on ``[-1, 1]^d`` with ``per_axis`` points per axis, ``[per_axis^d, d]``."""
    axes = np.meshgrid(*[np.linspace(-1, 1, per_axis)] * d, indexing="ij")
    return np.stack([a.ravel() for a in axes], 1).astype(np.float32)

def make_data(targets: list[str], widths: list[int], n_train: int, test_per_axis: int, seed: int):
    """The dataset of one input dimension: ``y`` has one column per (width, target) block (each
    target repeated for every width), so the engine's MSE loss is the sum of the blocks' losses."""
    d = TARGETS[targets[0]][0]
    x = np.random.default_rng(seed).uniform(-1, 1, (n_train, d)).astype(np.float32)
    xt = grid_points(d, test_per_axis)
    f = np.stack([TARGETS[t][1](x) for t in targets], 1)
    ft = np.stack([TARGETS[t][1](xt) for t in targets], 1)
    rep = len(widths)
    y = np.tile(f, (1, rep))  # column w_idx * T + t == target t
    yt = np.tile(ft, (1, rep))
    info = {"targets": targets, "widths": widths, "n_train": n_train,
            "train_points": f"uniform on [-1,1]^{d}, seed {seed}",
            "test_points": f"regular grid {test_per_axis}^{d} on [-1,1]^{d}", "noise": 0.0}
    return make_dataset(x, y, xt, yt, 0, f"universality{d}d", info), f, ft
