"""Loss-landscape figures (Li et al. 2018): contour with an optional trajectory, 3D surface, and
1D curves. ``values[i, j]`` is the value at ``(alphas[i], betas[j])``, the layout of
``dl_course.measures.slice_2d``. Functions return a ``matplotlib.figure.Figure``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def _check(alphas, betas, values):
    alphas, betas, values = np.asarray(alphas), np.asarray(betas), np.asarray(values)
    if values.shape != (alphas.size, betas.size):
        raise ValueError(f"values must have shape {(alphas.size, betas.size)}, got {values.shape}")
    return alphas, betas, values


def plot_landscape_contour(
    alphas: np.ndarray,
    betas: np.ndarray,
    values: np.ndarray,
    *,
    ax: Axes | None = None,
    levels: int = 30,
    log: bool = False,
    trajectory: np.ndarray | None = None,
    labels: tuple[str, str] = ("direction 1", "direction 2"),
    title: str | None = None,
) -> Figure:
    """Filled contours of a 2D slice, optionally of ``log10(values)`` (for losses spanning decades),
    with an optimization ``trajectory`` of shape ``(T, 2)`` (e.g. from
    ``dl_course.measures.project_trajectory``) drawn from start (circle) to end (star)."""
    alphas, betas, values = _check(alphas, betas, values)
    if ax is None:
        fig = Figure(figsize=(4.6, 4.0), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    z = np.log10(np.maximum(values, 1e-12)) if log else values
    cs = ax.contourf(alphas, betas, z.T, levels=levels, cmap="viridis")
    ax.contour(alphas, betas, z.T, levels=levels, colors="k", linewidths=0.3, alpha=0.5)
    fig.colorbar(cs, ax=ax, label="log10 value" if log else "value")
    if trajectory is not None:
        t = np.asarray(trajectory)
        ax.plot(t[:, 0], t[:, 1], "w.-", markersize=3, linewidth=1)
        ax.plot(t[0, 0], t[0, 1], "wo", markersize=6)
        ax.plot(t[-1, 0], t[-1, 1], "w*", markersize=10)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    if title:
        ax.set_title(title)
    return fig


def plot_landscape_surface(
    alphas: np.ndarray,
    betas: np.ndarray,
    values: np.ndarray,
    *,
    ax: Axes | None = None,
    labels: tuple[str, str] = ("direction 1", "direction 2"),
    title: str | None = None,
) -> Figure:
    """3D surface of a 2D slice (``ax`` must be a 3D axes if given)."""
    alphas, betas, values = _check(alphas, betas, values)
    if ax is None:
        fig = Figure(figsize=(4.6, 4.0), layout="constrained")
        ax = fig.add_subplot(projection="3d")
    a, b = np.meshgrid(alphas, betas, indexing="ij")
    ax.plot_surface(a, b, values, cmap="viridis", linewidth=0, antialiased=True)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_zlabel("value", labelpad=8)
    if title:
        ax.set_title(title)
    return ax.figure


def plot_landscape_1d(
    alphas: np.ndarray,
    curves: Mapping[str, np.ndarray],
    *,
    ax: Axes | None = None,
    xlabel: str = "α",
    ylabel: str = "loss",
    logy: bool = False,
    title: str | None = None,
) -> Figure:
    """1D curves ``label -> values`` over ``alphas``: slices along several directions, or
    interpolations between solutions (e.g. small- vs large-batch minima, Keskar et al. 2017)."""
    if ax is None:
        fig = Figure(figsize=(4.6, 3.4), layout="constrained")
        ax = fig.add_subplot()
    for label, vals in curves.items():
        ax.plot(np.asarray(alphas), np.asarray(vals), label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax.figure


def plot_landscape(
    alphas: np.ndarray,
    betas: np.ndarray,
    values: np.ndarray,
    *,
    trajectory: np.ndarray | None = None,
    log: bool = False,
    labels: tuple[str, str] = ("direction 1", "direction 2"),
    title: str | None = None,
) -> Figure:
    """Three panels: contour (with ``trajectory``), surface, and the two 1D slices through the
    grid point closest to the origin ``(0, 0)``."""
    alphas, betas, values = _check(alphas, betas, values)
    fig = Figure(figsize=(13.5, 4.0), layout="constrained")
    plot_landscape_contour(alphas, betas, values, ax=fig.add_subplot(1, 3, 1), log=log,
                           trajectory=trajectory, labels=labels)
    plot_landscape_surface(alphas, betas, values, ax=fig.add_subplot(1, 3, 2, projection="3d"),
                           labels=labels)
    i0, j0 = np.argmin(np.abs(alphas)), np.argmin(np.abs(betas))
    ax = fig.add_subplot(1, 3, 3)
    ax.plot(alphas, values[:, j0], label=labels[0])
    ax.plot(betas, values[i0, :], label=labels[1])
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("coefficient")
    ax.set_ylabel("value")
    ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_landscape_study(panels, *, title: str | None = None) -> Figure:
    """One row per ``(label, panel)`` of ``panels`` (Li et al. 2018, Figs. 5 and 9): the loss on a
    filter-normalized random plane as contours with the trajectory's least-squares projection
    onto that plane, the same as a surface, and the loss on the trajectory's PCA plane with the
    trajectory. A panel is a dict with ``alphas``, ``random_loss``, ``random_trajectory``,
    ``pca_alphas``, ``pca_betas``, ``pca_loss``, ``pca_trajectory`` and ``explained`` (the two
    PCA explained-variance ratios)."""
    fig = Figure(figsize=(14.0, 4.0 * len(panels)), layout="constrained")
    for i, (label, p) in enumerate(panels):
        a = np.asarray(p["alphas"])
        ax = fig.add_subplot(len(panels), 3, 3 * i + 1)
        plot_landscape_contour(a, a, p["random_loss"], ax=ax, log=True, trajectory=p["random_trajectory"],
                               labels=("filter-normalized direction 1", "filter-normalized direction 2"),
                               title=f"{label}: random plane, log10 loss")
        ax = fig.add_subplot(len(panels), 3, 3 * i + 2, projection="3d")
        plot_landscape_surface(a, a, p["random_loss"], ax=ax, labels=("dir. 1", "dir. 2"),
                               title=f"{label}: random plane, loss")
        ax.set_zlabel("")  # the title names the value; a z label would run into the next panel
        ev = np.asarray(p["explained"])
        ax = fig.add_subplot(len(panels), 3, 3 * i + 3)
        plot_landscape_contour(p["pca_alphas"], p["pca_betas"], p["pca_loss"], ax=ax, log=True,
                               trajectory=p["pca_trajectory"],
                               labels=(f"PC 1 ({ev[0]:.1%} of variance)", f"PC 2 ({ev[1]:.1%})"),
                               title=f"{label}: trajectory PCA plane, log10 loss")
    if title:
        fig.suptitle(title)
    return fig
