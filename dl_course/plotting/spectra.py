"""Figures for Hessian spectra: SLQ spectral densities and top eigenvalues over training.

Functions draw on a given ``ax`` (or a new ``matplotlib.figure.Figure``, without pyplot's global
state) and return the figure; a study writes it atomically with ``run.figure(name, fig)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def _axes(ax: Axes | None, figsize=(5.0, 3.6)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def plot_spectral_density(
    grid: np.ndarray,
    density: np.ndarray,
    *,
    ax: Axes | None = None,
    label: str | None = None,
    floor: float = 1e-10,
    title: str | None = None,
) -> Figure:
    """Spectral density on a log scale, as in Ghorbani, Krishnan & Xiao (2019): the bulk near 0
    and the outliers are both visible. ``density`` is clipped below at ``floor`` (the Gaussian
    smoothing makes it underflow far from the nodes). Several densities: call repeatedly with
    the same ``ax``."""
    fig, ax = _axes(ax)
    ax.semilogy(np.asarray(grid), np.maximum(np.asarray(density), floor), label=label)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (log scale)")
    ax.set_ylim(bottom=floor)
    if title:
        ax.set_title(title)
    if label is not None:
        ax.legend(fontsize="small")
    return fig


def plot_sharpness_over_training(
    steps: np.ndarray,
    values: np.ndarray,
    learning_rates: Sequence[float],
    *,
    labels: Sequence[str] | None = None,
    threshold: str = "gd",
    b1: float = 0.9,
    momentum: float = 0.0,
    ax: Axes | None = None,
    ylabel: str = r"$\lambda_{\max}$",
    logy: bool = False,
) -> Figure:
    """Sharpness of several runs over training with each run's stability threshold (Cohen et al.
    2021, Fig. 1): a solid curve per run and a dashed horizontal line of the same colour at

    * ``threshold="gd"``: ``(2 + 2β)/η`` (``2/η`` for plain GD; ``momentum`` = β);
    * ``threshold="adam"``: ``(2 + 2β1)/((1 − β1)η)`` for Adam's preconditioned sharpness
      (Cohen et al. 2022; ``38/η`` at ``β1 = 0.9``);
    * ``threshold="none"``: no line.

    ``values`` is ``[run, eval_point]`` (e.g. ``SweepResult.metrics["lambda_max"]``), ``steps``
    the evaluation steps, ``learning_rates`` one per run.
    """
    thresholds = {
        "gd": ((2.0 + 2.0 * momentum), "2/η" if momentum == 0 else "(2 + 2β)/η"),
        "adam": ((2.0 + 2.0 * b1) / (1.0 - b1), "(2 + 2β1)/((1 − β1)η)"),
        "none": (None, ""),
    }
    if threshold not in thresholds:
        raise ValueError(f"threshold must be one of {sorted(thresholds)}, got {threshold!r}")
    numerator, name = thresholds[threshold]
    values = np.atleast_2d(np.asarray(values))
    fig, ax = _axes(ax)
    for r, lr in enumerate(learning_rates):
        label = labels[r] if labels is not None else f"η = {lr:g}"
        (line,) = ax.plot(steps, values[r], label=label)
        if numerator is not None:
            ax.axhline(numerator / lr, color=line.get_color(), linestyle="--", linewidth=1.0)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    if name:
        ax.set_title(f"dashed: stability threshold {name}", fontsize="small")
    return fig


def plot_spectrum_study(
    snapshot_steps: Sequence[int],
    hessian_grids: np.ndarray,
    hessian_densities: np.ndarray,
    ggn_grid: np.ndarray,
    ggn_density: np.ndarray,
    hessian_top: np.ndarray,
    ggn_top: np.ndarray,
    num_outliers: int,
    *,
    title: str | None = None,
) -> Figure:
    """The outliers-plus-bulk picture (Sagun et al. 2017; Papyan 2019) in three panels:

    1. SLQ densities of ``H`` at each snapshot (``hessian_grids/densities``: ``[snapshot, points]``);
    2. the final ``H`` against its Gauss–Newton part ``G`` (``ggn_grid/density``);
    3. the top eigenvalues of ``H`` by index at every snapshot (``hessian_top``: ``[snapshot, k]``)
       and of ``G`` at the final one (log scale), with a line after index ``num_outliers`` (the
       outliers the class structure predicts: C − 1 for softmax cross-entropy).
    """
    fig = Figure(figsize=(15.0, 4.0), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for step, grid, dens in zip(snapshot_steps, hessian_grids, hessian_densities):
        plot_spectral_density(grid, dens, ax=ax1, label=f"step {int(step)}")
    ax1.set_title("Hessian spectral density over training")
    plot_spectral_density(hessian_grids[-1], hessian_densities[-1], ax=ax2, label="H (Hessian)")
    plot_spectral_density(ggn_grid, ggn_density, ax=ax2, label="G (Gauss–Newton)")
    ax2.set_title(f"final: H vs its Gauss–Newton part (step {int(snapshot_steps[-1])})")
    hessian_top = np.atleast_2d(np.asarray(hessian_top))
    idx = np.arange(1, hessian_top.shape[1] + 1)
    for step, top in zip(snapshot_steps, hessian_top):
        ax3.semilogy(idx, np.maximum(top, 1e-12), "o-", markersize=3, linewidth=0.8, label=f"H, step {int(step)}")
    ax3.semilogy(idx, np.maximum(np.asarray(ggn_top), 1e-12), "kx", label=f"G, step {int(snapshot_steps[-1])}")
    ax3.axvline(num_outliers + 0.5, color="k", linestyle="--", linewidth=0.8, label=f"{num_outliers} expected outliers")
    ax3.set_xlabel("index i")
    ax3.set_ylabel(r"$\lambda_i$ (log scale)")
    ax3.set_title("top eigenvalues over training")
    ax3.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
