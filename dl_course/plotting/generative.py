"""Figures for score-based generative models: image sample grids, 2D samples against data, score
fields. Built with matplotlib's object API (no pyplot state); each function returns the ``Figure``
and, given ``path``, writes a PNG there.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure


def _save(fig, path, dpi=150):
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def tile_images(images, nrow: int | None = None, pad: int = 1, pad_value: float = 1.0):
    """Tile ``images [n, H, W(, C)]`` into one ``[rows (H + pad) + pad, cols (W + pad) + pad(, C)]`` array.

    ``nrow`` images per row (default ``ceil(sqrt(n))``); empty cells and borders are ``pad_value``.
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    n, h, w = images.shape[:3]
    cols = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad) + images.shape[3:], pad_value, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top:top + h, left:left + w] = images[i]
    return grid


def sample_grid(images, *, nrow: int | None = None, path=None, title: str | None = None, vmin=0.0, vmax=1.0,
                cmap: str = "gray", cell_inches: float = 0.5):
    """A grid of image samples (e.g. 8x8 digits in [0, 1]); values are clipped to ``[vmin, vmax]``."""
    grid = np.clip(tile_images(images, nrow, pad_value=vmax), vmin, vmax)
    cols = nrow or int(math.ceil(math.sqrt(len(images))))
    rows = int(math.ceil(len(images) / cols))
    fig = Figure(figsize=(max(2.0, cols * cell_inches), max(2.0, rows * cell_inches)))
    ax = fig.add_subplot()
    if grid.ndim == 2:
        ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    else:
        ax.imshow((grid - vmin) / (vmax - vmin), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_samples_2d(samples, data=None, *, path=None, title: str | None = None, lim=None, max_points: int = 5000):
    """Scatter of 2D ``samples`` (blue) over reference ``data`` (grey), on equal axes."""
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    if data is not None:
        data = np.asarray(data)[:max_points]
        ax.scatter(data[:, 0], data[:, 1], s=3, c="0.6", alpha=0.5, label="data", rasterized=True)
    samples = np.asarray(samples)[:max_points]
    ax.scatter(samples[:, 0], samples[:, 1], s=3, c="tab:blue", alpha=0.6, label="samples", rasterized=True)
    if lim is not None:
        ax.set_xlim(lim)
        ax.set_ylim(lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4, frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_score_field(score_fn, t: float, *, lim=(-3.0, 3.0), num: int = 21, data=None, path=None,
                     title: str | None = None):
    """Arrows of a 2D score field ``score_fn(x, t)`` on a ``num x num`` grid at time ``t``.

    ``score_fn`` follows the package contract (batch of points, per-example ``t``); arrows are scaled
    by matplotlib's autoscale, so compare directions and relative lengths within one panel.
    """
    g = np.linspace(lim[0], lim[1], num, dtype=np.float32)
    xx, yy = np.meshgrid(g, g)
    points = np.stack([xx.ravel(), yy.ravel()], axis=-1)
    scores = np.asarray(score_fn(points, np.full((points.shape[0],), t, np.float32)))
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    if data is not None:
        data = np.asarray(data)
        ax.scatter(data[:, 0], data[:, 1], s=2, c="0.7", alpha=0.5, rasterized=True)
    ax.quiver(points[:, 0], points[:, 1], scores[:, 0], scores[:, 1], color="tab:red", angles="xy")
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_aspect("equal")
    ax.set_title(title or f"score at t = {t:g}")
    return _save(fig, path)
