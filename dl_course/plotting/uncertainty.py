"""Figures for uncertainty studies: reliability diagrams, metrics under shift, OOD detection.

``plot_*`` functions draw on a given matplotlib ``Axes``; ``*_figure`` functions lay out a full
figure, save it as PNG and return the path. Figures are built with ``matplotlib.figure.Figure``
(no pyplot state, any backend). Every OOD figure states that OOD is the positive class.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from dl_course.uncertainty import ood as ood_lib
from dl_course.uncertainty.calibration import ReliabilityDiagram

OOD_NOTE = "positive class: OOD (higher score = more OOD)"


def _save(fig: Figure, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


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


def reliability_figure(
    diagrams: Mapping[str, ReliabilityDiagram], path: str, eces: Mapping[str, float] | None = None
) -> str:
    """One reliability diagram per method (``name -> diagram``) side by side; saves a PNG."""
    fig = Figure(figsize=(3.6 * len(diagrams), 3.6))
    axes = fig.subplots(1, len(diagrams), squeeze=False)[0]
    for ax, (name, diagram) in zip(axes, diagrams.items()):
        plot_reliability(ax, diagram, title=name, ece=None if eces is None else float(eces[name]))
    return _save(fig, path)


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


def shift_figure(
    results: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]], metrics: Sequence[str], path: str
) -> str:
    """Grid: rows = metrics, columns = corruptions; ``results[corruption][method][metric]`` is
    ``[levels]`` or ``[runs, levels]``. Saves a PNG."""
    corruptions = list(results)
    fig = Figure(figsize=(3.4 * len(corruptions), 2.8 * len(metrics)))
    axes = fig.subplots(len(metrics), len(corruptions), squeeze=False)
    for j, corruption in enumerate(corruptions):
        for i, metric in enumerate(metrics):
            values = {m: r[metric] for m, r in results[corruption].items()}
            plot_metric_vs_shift(axes[i, j], values, metric)
            if i == 0:
                axes[i, j].set_title(corruption)
    axes[0, -1].legend(fontsize="small")
    fig.suptitle("lines: mean over runs; bands: min to max over runs", fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def plot_score_histograms(ax, scores_in, scores_out, score_name: str, bins: int = 50):
    """Histograms of an OOD score on in-distribution (negative) and OOD (positive) inputs."""
    scores_in = np.asarray(scores_in, dtype=float)
    scores_out = np.asarray(scores_out, dtype=float)
    edges = np.histogram_bin_edges(np.concatenate([scores_in, scores_out]), bins=bins)
    ax.hist(scores_in, bins=edges, alpha=0.6, density=True, label="in-distribution (negative)")
    ax.hist(scores_out, bins=edges, alpha=0.6, density=True, label="OOD (positive)")
    ax.set_xlabel(f"{score_name} score (higher = more OOD)")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")


def plot_roc(ax, curves: Mapping[str, tuple[np.ndarray, np.ndarray]]):
    """ROC curves with OOD positive, ``label -> (scores_in, scores_out)``; AUROC in the legend."""
    for label, (scores_in, scores_out) in curves.items():
        fpr, tpr, _ = ood_lib.roc_curve(scores_in, scores_out)
        ax.plot(fpr, tpr, label=f"{label} (AUROC {ood_lib.auroc(scores_in, scores_out):.3f})")
    ax.plot([0, 1], [0, 1], "k:", linewidth=1)
    ax.axhline(0.95, color="gray", linewidth=0.5, linestyle="--")
    ax.set_xlabel("FPR (in-distribution flagged as OOD)")
    ax.set_ylabel("TPR (OOD detected)")
    ax.set_title(f"ROC, {OOD_NOTE}", fontsize="small")
    ax.legend(fontsize="small", loc="lower right")


def ood_figure(scores_in: Mapping[str, np.ndarray], scores_out: Mapping[str, np.ndarray], path: str,
               title: str | None = None) -> str:
    """Per score: a histogram panel, plus one panel of all ROC curves; ``score name -> [N]``
    (higher = more OOD). States that OOD is the positive class. Saves a PNG."""
    names = list(scores_in)
    fig = Figure(figsize=(3.4 * (len(names) + 1), 3.2))
    axes = fig.subplots(1, len(names) + 1, squeeze=False)[0]
    for ax, name in zip(axes, names):
        plot_score_histograms(ax, scores_in[name], scores_out[name], name)
    plot_roc(axes[-1], {n: (scores_in[n], scores_out[n]) for n in names})
    fig.suptitle(f"{title + ': ' if title else ''}{OOD_NOTE}")
    fig.tight_layout()
    return _save(fig, path)
