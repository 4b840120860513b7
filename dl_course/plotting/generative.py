"""Figures for score-based generative models: image sample grids, 2D samples against data, score
fields, the 2D overview of a score model, Langevin mode weights. Built with matplotlib's object API
(no pyplot state); each function returns the ``Figure`` (the results layer writes it).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure


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


def sample_grid(images, *, nrow: int | None = None, title: str | None = None, vmin=0.0, vmax=1.0,
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
    return fig


def plot_samples_2d(samples, data=None, *, title: str | None = None, lim=None, max_points: int = 5000):
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
    return fig


def plot_score_field(score_fn, t: float, *, lim=(-3.0, 3.0), num: int = 21, data=None,
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
    return fig


def score_model_overview(panels: list[dict], grid_axis_by_name: dict, t_field: float, limits: dict) -> Figure:
    """One row per dataset: samples over data, learned score field at ``t_field``, model density,
    reference (true or KDE) density; the densities share the reference's colour scale per row.

    ``panels[i]``: ``name``, ``sampler``, ``data``/``samples`` ``[n, 2]``, ``field_points`` /
    ``field_scores`` ``[m, 2]``, ``logp_grid`` / ``ref_logp_grid`` over the ``num^2`` grid whose
    axis is ``grid_axis_by_name[name]``, ``nll``, ``ref_label``; ``limits[name]``: plot range.
    """
    fig = Figure(figsize=(13.0, 3.3 * len(panels)))
    axes = fig.subplots(len(panels), 4, squeeze=False)
    for row, p in zip(axes, panels):
        lim = limits.get(p["name"], (-4.0, 4.0))
        d = p["data"][:3000]
        s = p["samples"][:3000]
        row[0].scatter(d[:, 0], d[:, 1], s=2, c="0.65", alpha=0.5, label="data", rasterized=True)
        row[0].scatter(s[:, 0], s[:, 1], s=2, c="tab:blue", alpha=0.5, label=p["sampler"], rasterized=True)
        row[0].legend(loc="upper right", markerscale=5, frameon=False, fontsize=7)
        row[0].set_title(f"{p['name']}: samples ({p['sampler']})", fontsize=9)
        fp, fs = p["field_points"], p["field_scores"]
        row[1].scatter(d[:, 0], d[:, 1], s=1, c="0.75", alpha=0.4, rasterized=True)
        row[1].quiver(fp[:, 0], fp[:, 1], fs[:, 0], fs[:, 1], color="tab:red", angles="xy")
        row[1].set_title(f"learned score, t = {t_field:g}", fontsize=9)
        g = grid_axis_by_name[p["name"]]
        n = len(g)
        learned, ref = np.exp(p["logp_grid"]).reshape(n, n), np.exp(p["ref_logp_grid"]).reshape(n, n)
        vmax = float(np.nanmax(ref))
        for ax, img, title in ((row[2], learned, f"PF-ODE density (test NLL {p['nll']:.2f})"),
                               (row[3], ref, p["ref_label"])):
            ax.imshow(img, origin="lower", extent=(g[0], g[-1], g[0], g[-1]), cmap="viridis", vmin=0.0, vmax=vmax)
            ax.set_title(title, fontsize=9)
        for ax in row:
            ax.set_xlim(lim)
            ax.set_ylim(lim)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def langevin_weights_figure(samples: dict, weights: dict, plain_fracs, record_every: int, annealed_weight: float,
                            true_weight: float) -> Figure:
    """Song & Ermon 2019, Fig. 3: ``samples[title] [n, 2]`` (exact / plain / annealed) with their
    minor-mode weights ``weights[title]``, plus the plain chains' minor-mode fraction
    ``plain_fracs [chains, records]`` against the number of steps, with the annealed result and
    the truth."""
    fig = Figure(figsize=(4.0 * (len(samples) + 1) - 1.0, 3.8))
    axes = fig.subplots(1, len(samples) + 1)
    for ax, (title, pts) in zip(axes, samples.items()):
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, rasterized=True)
        ax.set_title(f"{title}: minor-mode weight {weights[title]:.3f}", fontsize=9)
        ax.set_xlim(-10, 10)
        ax.set_ylim(-10, 10)
        ax.set_aspect("equal")
    plain_fracs = np.asarray(plain_fracs)
    steps = np.arange(plain_fracs.shape[1]) * record_every
    ax = axes[-1]
    for f in plain_fracs:
        ax.plot(np.maximum(steps, 1), f, color="tab:blue", alpha=0.5, lw=1)
    ax.axhline(true_weight, color="k", ls="--", lw=1, label=f"true weight {true_weight:g}")
    ax.axhline(annealed_weight, color="tab:orange", lw=1.5, label=f"annealed (mean) {annealed_weight:.3f}")
    ax.set_xscale("log")
    ax.set_ylim(0, 0.7)
    ax.set_xlabel("plain Langevin steps")
    ax.set_ylabel("fraction in minor mode")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("plain chains (one line per seed) keep the initial split", fontsize=9)
    fig.tight_layout()
    return fig


def bits_per_dim_bars(values: dict, *, title: str | None = None) -> Figure:
    """Horizontal bars of test bits/dim per model (``values``: name -> bits/dim), lowest first; the
    first entry (the model under study) in blue, the baselines in grey."""
    names = sorted(values, key=values.get)
    first = next(iter(values))
    fig = Figure(figsize=(6.0, 0.45 * len(names) + 1.2))
    ax = fig.add_subplot()
    bars = ax.barh(range(len(names)), [values[n] for n in names],
                   color=["C0" if n == first else "0.6" for n in names])
    for b, n in zip(bars, names):
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {values[n]:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("test bits / dim (lower is better)")
    ax.set_xlim(0, 1.15 * max(values.values()))
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def nearest_neighbour_pairs(samples, x_train, *,
                            title: str = "samples (top) and their nearest training images") -> Figure:
    """Each sample above its nearest training image (Euclidean, flattened): a memorisation check."""
    a = np.asarray(samples, np.float64).reshape(len(samples), -1)
    b = np.asarray(x_train, np.float64).reshape(len(x_train), -1)
    idx = np.argmin(np.sum(a ** 2, -1)[:, None] - 2 * a @ b.T + np.sum(b ** 2, -1)[None], axis=-1)
    images = np.concatenate([np.asarray(samples), np.asarray(x_train)[idx]])
    return sample_grid(images, nrow=len(samples), title=title)


def per_image_bits_figure(bits: np.ndarray, stderr: np.ndarray, one_draw: np.ndarray | None = None, *,
                          title: str | None = None) -> Figure:
    """Left: histogram of the per-image bits/dim (mean over the bound's draws), with the one-draw
    estimate of the same images overlaid (outline) when given, median and 2x median marked. Right:
    every image's value with its +-2 standard-error bar, sorted (the tail on the right)."""
    bits, stderr = np.asarray(bits, float), np.asarray(stderr, float)
    fig = Figure(figsize=(9.0, 3.6))
    ax, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    lo = min(bits.min(), one_draw.min() if one_draw is not None else bits.min())
    hi = max(bits.max(), one_draw.max() if one_draw is not None else bits.max(), 2 * np.median(bits))
    edges = np.linspace(lo, hi * 1.02, 41)
    ax.hist(bits, bins=edges, color="C0", alpha=0.7, label=f"mean of draws (max {bits.max():.2f})")
    if one_draw is not None:
        ax.hist(np.asarray(one_draw, float), bins=edges, histtype="step", color="k",
                label=f"one draw (max {np.max(one_draw):.2f})")
    med = float(np.median(bits))
    ax.axvline(med, color="C1", lw=1, label=f"median {med:.2f}")
    ax.axvline(2 * med, color="C3", lw=1, ls="--", label="2 x median")
    ax.set_xlabel("bits / dim of one test image")
    ax.set_ylabel("images")
    ax.legend(fontsize=7)
    order = np.argsort(bits)
    ax2.errorbar(np.arange(len(bits)), bits[order], yerr=2 * np.nan_to_num(stderr[order]), fmt=".", ms=2, lw=0.5,
                 color="C0", ecolor="0.6")
    ax2.axhline(2 * med, color="C3", lw=1, ls="--")
    ax2.set_xlabel("test images, sorted")
    ax2.set_ylabel("bits / dim +- 2 s.e.")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
