"""OOD-detection figures: score histograms, ROC curves and AUROC tables (Hendrycks & Gimpel 2017).
Every figure states that OOD is the positive class. Functions return a ``Figure`` (or draw on an
``Axes``); the results layer writes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from dl_course.uncertainty import ood as ood_lib

OOD_NOTE = "positive class: OOD (higher score = more OOD)"


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


def ood_figure(scores_in: Mapping[str, np.ndarray], scores_out: Mapping[str, np.ndarray],
               title: str | None = None) -> Figure:
    """Per score: a histogram panel, plus one panel of all ROC curves; ``score name -> [N]``
    (higher = more OOD)."""
    names = list(scores_in)
    fig = Figure(figsize=(3.4 * (len(names) + 1), 3.2), layout="constrained")
    axes = fig.subplots(1, len(names) + 1, squeeze=False)[0]
    for ax, name in zip(axes, names):
        plot_score_histograms(ax, scores_in[name], scores_out[name], name)
    plot_roc(axes[-1], {n: (scores_in[n], scores_out[n]) for n in names})
    fig.suptitle(f"{title + ': ' if title else ''}{OOD_NOTE}")
    return fig


def auroc_table_figure(table: Mapping[str, Mapping[str, Mapping[str, float]]], methods: Sequence[str],
                       scores: Sequence[str], title: str) -> Figure:
    """One heat map per OOD set: ``table[ood set][method][score]`` = AUROC (0.5 = chance, red below)."""
    fig = Figure(figsize=(1.2 + 1.1 * len(scores) * len(table), 0.9 + 0.45 * len(methods)), layout="constrained")
    axes = fig.subplots(1, len(table), squeeze=False)[0]
    for ax, (o, by_m) in zip(axes, table.items()):
        mat = np.asarray([[by_m[m][s] for s in scores] for m in methods])
        im = ax.imshow(mat, vmin=0.0, vmax=1.0, cmap="RdYlGn", aspect="auto")
        for (r, c), v in np.ndenumerate(mat):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(scores)), scores, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(methods)), methods if ax is axes[0] else [""] * len(methods), fontsize=7)
        ax.set_title(o, fontsize=9)
    fig.colorbar(im, ax=axes, label="AUROC (mean over seeds; 0.5 = chance)")
    fig.suptitle(f"{title}; {OOD_NOTE}", fontsize="small")
    return fig


def score_histogram_grid(scores_in: Mapping[str, Mapping[str, np.ndarray]],
                         scores_out: Mapping[str, Mapping[str, np.ndarray]], title: str) -> Figure:
    """Rows = methods, columns = scores: ``scores_*[method][score] -> [N]`` histograms, AUROC in
    each title."""
    methods, names = list(scores_in), list(next(iter(scores_in.values())))
    fig = Figure(figsize=(2.6 * len(names), 2.1 * len(methods)), layout="constrained")
    axes = fig.subplots(len(methods), len(names), squeeze=False)
    for i, m in enumerate(methods):
        for j, s in enumerate(names):
            a, b = scores_in[m][s], scores_out[m][s]
            plot_score_histograms(axes[i, j], a, b, s, bins=40)
            axes[i, j].set_title(f"{m}: AUROC {ood_lib.auroc(a, b):.3f}", fontsize=8)
            axes[i, j].set_xlabel(axes[i, j].get_xlabel(), fontsize=7)
            if (i, j) != (0, 0):
                axes[i, j].get_legend().remove()
    fig.suptitle(f"{title}; {OOD_NOTE}", fontsize="small")
    return fig
