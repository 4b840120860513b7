"""Generalization-measure scatter plots across a sweep: a measure (sharpness, margin, norm) per
run against its test accuracy, with rank correlations (Jiang et al. 2020 use Kendall's τ)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats


def rank_correlations(measure: np.ndarray, accuracy: np.ndarray) -> dict[str, float]:
    """Kendall's τ and Spearman's ρ between a measure and accuracy over the finite runs (diverged
    runs, whose values are not finite, are dropped); also the number of runs used."""
    measure, accuracy = np.asarray(measure, float), np.asarray(accuracy, float)
    ok = np.isfinite(measure) & np.isfinite(accuracy)
    if ok.sum() < 3:
        return {"kendall_tau": float("nan"), "spearman_rho": float("nan"), "num_runs": int(ok.sum())}
    return {
        "kendall_tau": float(stats.kendalltau(measure[ok], accuracy[ok]).statistic),
        "spearman_rho": float(stats.spearmanr(measure[ok], accuracy[ok]).statistic),
        "num_runs": int(ok.sum()),
    }


def plot_measure_vs_accuracy(
    measure: np.ndarray,
    accuracy: np.ndarray,
    *,
    color_by: np.ndarray | None = None,
    color_label: str = "",
    xlabel: str = "measure",
    ylabel: str = "test accuracy",
    logx: bool = False,
    log_color: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """One point per run; colour by a swept hyperparameter (e.g. batch size, learning rate) and
    report Kendall's τ and Spearman's ρ in the title. Non-finite runs are left out."""
    measure, accuracy = np.asarray(measure, float), np.asarray(accuracy, float)
    ok = np.isfinite(measure) & np.isfinite(accuracy)
    if ax is None:
        fig = Figure(figsize=(4.4, 3.6), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    if color_by is not None:
        c = np.asarray(color_by, float)[ok]
        sc = ax.scatter(measure[ok], accuracy[ok], c=np.log10(c) if log_color else c,
                        cmap="viridis", edgecolors="k", linewidths=0.3)
        fig.colorbar(sc, ax=ax, label=("log10 " if log_color else "") + color_label)
    else:
        ax.scatter(measure[ok], accuracy[ok], edgecolors="k", linewidths=0.3)
    if logx:
        ax.set_xscale("log")
    corr = rank_correlations(measure, accuracy)
    ax.set_title(f"Kendall τ = {corr['kendall_tau']:.2f}, Spearman ρ = {corr['spearman_rho']:.2f}"
                 f" ({corr['num_runs']} runs)", fontsize="small")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def plot_measures_vs_accuracy(
    measures: Mapping[str, np.ndarray],
    accuracy: np.ndarray,
    *,
    color_by: np.ndarray | None = None,
    color_label: str = "",
    logx: Sequence[str] = (),
    log_color: bool = False,
) -> Figure:
    """A row of :func:`plot_measure_vs_accuracy` panels, one per named measure (names in ``logx``
    get a log x-axis)."""
    n = len(measures)
    fig = Figure(figsize=(4.2 * n, 3.6), layout="constrained")
    for i, (name, values) in enumerate(measures.items()):
        plot_measure_vs_accuracy(values, accuracy, color_by=color_by, color_label=color_label,
                                 xlabel=name, logx=name in logx, log_color=log_color,
                                 ax=fig.add_subplot(1, n, i + 1))
    return fig
