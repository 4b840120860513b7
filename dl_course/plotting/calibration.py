"""Calibration figures: reliability diagrams (Guo et al. 2017), metrics against the intensity of a
dataset shift (Ovadia et al. 2019), and sharpness against calibration across runs.

``plot_*`` functions draw on a given matplotlib ``Axes``; ``*_figure`` functions lay out a full
``matplotlib.figure.Figure`` (no pyplot state) and return it; the results layer writes it
(``RunDir.figure``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from dl_course.uncertainty.calibration import ReliabilityDiagram


def plot_reliability(ax, diagram: ReliabilityDiagram, title: str | None = None, ece: float | None = None):
    """Reliability diagram (Guo et al. 2017, Fig. 1): per-bin accuracy as bars over the bin, the
    gap to the bin's mean confidence shaded, the diagonal of perfect calibration dashed."""
    lower = np.asarray(diagram.lower, dtype=float)
    upper = np.asarray(diagram.upper, dtype=float)
    acc = np.asarray(diagram.accuracy, dtype=float)
    conf = np.asarray(diagram.confidence, dtype=float)
    filled = np.asarray(diagram.count) > 0
    width = (upper - lower)[filled]
    ax.bar(lower[filled], acc[filled], width=width, align="edge", color="tab:blue",
           edgecolor="black", linewidth=0.5, label="accuracy")
    ax.bar(lower[filled], (conf - acc)[filled], bottom=acc[filled], width=width, align="edge",
           color="tab:red", alpha=0.3, edgecolor="tab:red", linewidth=0.5, label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    if ece is not None:
        ax.text(0.04, 0.9, f"ECE = {ece:.3f}", transform=ax.transAxes)
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")


def reliability_figure(diagrams: Mapping[str, ReliabilityDiagram], eces: Mapping[str, float] | None = None) -> Figure:
    """One reliability diagram per method (``name -> diagram``) side by side."""
    fig = Figure(figsize=(3.6 * len(diagrams), 3.6), layout="constrained")
    axes = fig.subplots(1, len(diagrams), squeeze=False)[0]
    for ax, (name, diagram) in zip(axes, diagrams.items()):
        plot_reliability(ax, diagram, title=name, ece=None if eces is None else float(eces[name]))
    return fig


def reliability_grid(cells: Mapping[str, Sequence[tuple[str, ReliabilityDiagram, float]]], title: str) -> Figure:
    """Columns = methods, rows = conditions: ``cells[method] = [(row title, diagram, ece), ...]``
    (e.g. clean and shifted test sets); the legend only in the first column."""
    nrows = len(next(iter(cells.values())))
    fig = Figure(figsize=(2.5 * len(cells), 2.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, len(cells), squeeze=False)
    for j, (m, rows) in enumerate(cells.items()):
        for i, (cond, diagram, ece) in enumerate(rows):
            plot_reliability(axes[i, j], diagram, title=f"{m}, {cond}", ece=ece)
            if j:
                axes[i, j].get_legend().remove()
    fig.suptitle(title, fontsize="small")
    return fig


def plot_metric_vs_shift(ax, values: Mapping[str, np.ndarray], metric: str, levels: Sequence[int] | None = None):
    """A metric against corruption intensity, one line per method (Ovadia et al. 2019, Fig. 2).

    ``values[method]`` is ``[levels]`` or ``[runs, levels]``; with runs, the line is the mean and
    the band spans the runs' minimum to maximum.
    """
    for name, v in values.items():
        v = np.atleast_2d(np.asarray(v, dtype=float))
        x = np.arange(v.shape[1]) if levels is None else np.asarray(levels)
        (line,) = ax.plot(x, v.mean(axis=0), marker="o", label=name)
        if v.shape[0] > 1:
            ax.fill_between(x, v.min(axis=0), v.max(axis=0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("shift intensity (0 = clean test set)")
    ax.set_ylabel(metric)


def shift_figure(results: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]], metrics: Sequence[str]) -> Figure:
    """Grid: rows = metrics, columns = corruptions; ``results[corruption][method][metric]`` is
    ``[levels]`` or ``[runs, levels]``."""
    corruptions = list(results)
    fig = Figure(figsize=(3.4 * len(corruptions), 2.8 * len(metrics)), layout="constrained")
    axes = fig.subplots(len(metrics), len(corruptions), squeeze=False)
    for j, corruption in enumerate(corruptions):
        for i, metric in enumerate(metrics):
            values = {m: r[metric] for m, r in results[corruption].items()}
            plot_metric_vs_shift(axes[i, j], values, metric)
            if i == 0:
                axes[i, j].set_title(corruption)
    axes[0, -1].legend(fontsize="small")
    fig.suptitle("lines: mean over runs; bands: min to max over runs", fontsize="small")
    return fig


def mean_shift_figure(means: Mapping[str, Mapping[str, Sequence[float]]], metrics: Sequence[str], title: str) -> Figure:
    """One panel per metric: ``means[method][metric]`` (one value per shift level) against the level."""
    fig = Figure(figsize=(3.7 * len(metrics), 3.8), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, k in zip(axes, metrics):
        plot_metric_vs_shift(ax, {m: np.asarray(v[k]) for m, v in means.items()}, k)
    axes[0].legend(fontsize="small")
    fig.suptitle(title, fontsize="small")
    return fig


def sharpness_scatter_figure(rows: Sequence[dict], measures: Sequence[str], outcomes: Sequence[str],
                             labels: Mapping[str, str], title: str) -> Figure:
    """Rows of panels: the sharpness ``measures`` (log x); columns: ``outcomes``; one point per run
    (``rows``: dicts with the measures, outcomes and ``learning_rate``), coloured by learning rate;
    Kendall's τ and Spearman's ρ over the runs in each panel's title (``rank_correlations``)."""
    from matplotlib.ticker import NullFormatter

    from dl_course.plotting.scatter import rank_correlations

    lrs = sorted({r["learning_rate"] for r in rows})
    colors = dict(zip(lrs, [f"C{i}" for i in range(len(lrs))]))
    fig = Figure(figsize=(3.3 * len(outcomes), 3.0 * len(measures)), layout="constrained")
    axes = fig.subplots(len(measures), len(outcomes), squeeze=False)
    for i, m in enumerate(measures):
        for j, o in enumerate(outcomes):
            ax = axes[i, j]
            for lr in lrs:
                pts = [r for r in rows if r["learning_rate"] == lr]
                ax.scatter([r[m] for r in pts], [r[o] for r in pts], color=colors[lr], edgecolors="k", linewidths=0.3,
                           label=f"η = {lr:g}")
            c = rank_correlations([r[m] for r in rows], [r[o] for r in rows])
            ax.set_title(f"τ = {c['kendall_tau']:+.2f}, ρ = {c['spearman_rho']:+.2f} ({c['num_runs']} runs)",
                         fontsize="small")
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(labels.get(m, m), fontsize="small")
            ax.set_ylabel(labels.get(o, o), fontsize="small")
    axes[0, 0].legend(fontsize="x-small")
    fig.suptitle(title, fontsize="small")
    return fig
