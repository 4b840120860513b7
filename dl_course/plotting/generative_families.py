"""Figures comparing families of generative models on the same images: sample grids side by side
and a VAE's rate-distortion curve over beta (Alemi et al. 2018, "Fixing a broken ELBO")."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from dl_course.plotting.generative import tile_images
from dl_course.plotting.style import colors


def family_samples_figure(grids: dict, *, bits_per_dim: dict | None = None, nrow: int = 8) -> Figure:
    """One panel per entry of ``grids`` (name -> images ``[n, H, W, C]`` in ``[0, 1]``), titled with
    the name and, where given, its test bits/dim."""
    bits_per_dim = bits_per_dim or {}
    fig = Figure(figsize=(3.2 * len(grids), 3.6))
    for i, (name, images) in enumerate(grids.items()):
        ax = fig.add_subplot(1, len(grids), i + 1)
        grid = np.clip(tile_images(np.asarray(images), nrow, pad_value=1.0), 0.0, 1.0)
        ax.imshow(grid[..., 0] if grid.ndim == 3 and grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_axis_off()
        bpd = bits_per_dim.get(name)
        ax.set_title(name if bpd is None else f"{name}\n{bpd:.2f} bits/dim", fontsize=10)
    fig.tight_layout()
    return fig


def rate_distortion_figure(betas, rates, distortions, num_dims: int) -> Figure:
    """Distortion ``D = -E_q log p(x|z)`` against rate ``R = KL(q(z|x) || p(z))`` (test means, nats) of
    VAEs trained with the beta-ELBO ``-(D + beta R)``, each point labelled with its beta, and the
    line ``D + R = const`` (equal ELBO) through the beta = 1 point; on the right the ELBO in
    bits/dim ``(D + R) / (num_dims ln 2)`` against beta."""
    betas, rates, dists = (np.asarray(v, float) for v in (betas, rates, distortions))
    fig = Figure(figsize=(9.0, 3.8))
    ax, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    cs = colors(len(betas), "plasma")
    ax.plot(rates, dists, "-", color="0.6", lw=1, zorder=1)
    for b, r, d, c in zip(betas, rates, dists, cs):
        ax.scatter([r], [d], color=c, zorder=2)
        ax.annotate(f"β={b:g}", (r, d), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if np.any(betas == 1.0):
        total = float((rates + dists)[betas == 1.0][0])
        span = np.linspace(0.0, float(np.max(rates)) * 1.3 + 1.0, 50)
        ax.plot(span, total - span, "--", color="k", lw=0.8, label="D + R of β = 1 (equal ELBO)")
        ax.legend(fontsize=8)
    ax.set_xlabel("rate R (nats)")
    ax.set_ylabel("distortion D (nats)")
    ax.set_xlim(0.0, float(np.max(rates)) * 1.3 + 1.0)
    ax.set_title("VAE rate–distortion (test)")
    ax2.plot(betas, (rates + dists) / (num_dims * math.log(2.0)), "o-")
    ax2.set_xscale("log")
    ax2.set_xticks(betas, [f"{b:g}" for b in betas])
    ax2.minorticks_off()
    ax2.set_xlabel("β")
    ax2.set_ylabel("−ELBO (bits/dim)")
    ax2.set_title("the test ELBO of each β-VAE")
    fig.tight_layout()
    return fig
