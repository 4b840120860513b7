"""Figures of function approximation: error vs width on log-log axes with fitted slopes, and the
fitted functions of several widths against the target (1D curves, 2D images)."""

from __future__ import annotations

import numpy as np

from dl_course.plotting.style import band, pyplot


def universality_error(widths, arrays: dict, targets: list, slopes: dict):
    """Test MSE (solid, mean ± std over seeds) and train MSE (dashed) vs width, log-log, per
    target, with the fitted slope in the legend and reference lines w^-1 and w^-4."""
    plt = pyplot()
    w = np.asarray(widths, float)
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for j, t in enumerate(targets):
        c = f"C{j}"
        band(ax, w, arrays[f"{t}/test_mse"], f"{t} test (slope {slopes[t]:.2f})", color=c, marker="o", ms=3)
        ax.plot(w, np.mean(arrays[f"{t}/train_mse"], 0), color=c, ls="--", lw=1)
    ref = np.mean(arrays[f"{targets[0]}/test_mse"][:, 0])
    for p, ls in ((1, ":"), (4, "-.")):
        ax.plot(w, ref * (w / w[0]) ** (-p), color="gray", ls=ls, lw=1, label=f"w^-{p}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_ylim(max(ax.get_ylim()[0], 1e-9), None)
    ax.set_xlabel("hidden width w")
    ax.set_ylabel("MSE (solid: test grid, dashed: train)")
    ax.set_title("one-hidden-layer ReLU networks: approximation error vs width", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig

def universality_fits(fits: dict, show_widths: list):
    """1D targets: the target and the fitted functions at ``show_widths``; 2D targets: images of
    the target and of the fits (one row per target)."""
    plt = pyplot()
    one = [t for t, f in fits.items() if f["d"] == 1]
    two = [t for t, f in fits.items() if f["d"] == 2]
    ncols = max(len(one), 1 + len(show_widths) if two else 0)
    nrows = (1 if one else 0) + len(two)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.4 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    r = 0
    if one:
        for k, t in enumerate(one):
            ax = axes[0, k]
            ax.axis("on")
            f = fits[t]
            x = f["x"][:, 0]
            ax.plot(x, f["target"], color="k", lw=2, label="target")
            for w in show_widths:
                ax.plot(x, f["fits"][w], lw=1, label=f"w={w}")
            ax.set_title(t, fontsize=9)
            ax.legend(fontsize=6)
        r = 1
    for t in two:
        f = fits[t]
        n = f["per_axis"]
        panels = [("target", f["target"])] + [(f"w={w}", f["fits"][w]) for w in show_widths]
        for k, (name, v) in enumerate(panels):
            ax = axes[r, k]
            ax.imshow(np.asarray(v).reshape(n, n).T, origin="lower", extent=(-1, 1, -1, 1), cmap="RdBu_r",
                      vmin=-1.2, vmax=1.2)
            ax.set_title(f"{t}: {name}", fontsize=8)
        r += 1
    fig.tight_layout()
    return fig
