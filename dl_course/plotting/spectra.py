"""Figures for Hessian spectra: SLQ spectral densities and top eigenvalues over training.

Functions draw on a given ``ax`` (or a new ``matplotlib.figure.Figure``, without pyplot's global
state) and return the figure; save it with ``fig.savefig(path, dpi=...)``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def _axes(ax: Optional[Axes], figsize=(5.0, 3.6)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def plot_spectral_density(
    grid: np.ndarray,
    density: np.ndarray,
    *,
    ax: Optional[Axes] = None,
    label: Optional[str] = None,
    floor: float = 1e-10,
    title: Optional[str] = None,
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
    labels: Optional[Sequence[str]] = None,
    threshold: str = "gd",
    b1: float = 0.9,
    momentum: float = 0.0,
    ax: Optional[Axes] = None,
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
