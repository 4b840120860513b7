"""Figures of classifiers: benchmark bars against a paper's numbers, accuracy curves over
training (mean ± std over seeds), confusion matrices, accuracy vs the number of labels. Every
function takes plain arrays / dicts and returns a matplotlib figure."""

from __future__ import annotations

import numpy as np

from dl_course.plotting.style import band, finish, pyplot


def baseline_bars(table: dict, title: str = "MNIST-1D test accuracy: ours (mean ± std) vs Greydanus & Kobak"):
    """Grouped bars per model: default and shuffled, ours with error bars, the paper's as markers."""
    plt = pyplot()
    models = list(table)
    x = np.arange(len(models))
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(models), 3.4))
    for j, (key, color) in enumerate((("default", "C0"), ("shuffled", "C1"))):
        ours = [100 * table[m][key] for m in models]
        err = [100 * table[m][f"{key}_std"] for m in models]
        paper = [100 * table[m][f"paper_{key}"] for m in models]
        pos = x + (j - 0.5) * 0.38
        ax.bar(pos, ours, 0.36, yerr=err, capsize=3, color=color, alpha=0.8, label=f"{key} (ours)")
        ax.scatter(pos, paper, marker="_", s=400, color="k", zorder=3, label="paper" if j == 0 else None)
        for p, o in zip(pos, ours):
            ax.text(p, o + 2, f"{o:.0f}", ha="center", fontsize=7)
    ax.set_xticks(x, models)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.axhline(10, color="gray", ls=":", lw=1)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig

def accuracy_curves(curves: dict, title: str = "", ylabel: str = "test accuracy"):
    """One line (mean ± std over runs) per entry ``label -> (steps, values[run, eval])``;
    labels ending in ``shuffled`` are dashed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    colors = {}
    for label, (steps, values) in curves.items():
        base = label.replace(" shuffled", "")
        colors.setdefault(base, f"C{len(colors)}")
        band(ax, steps, values, label, color=colors[base], ls="--" if label.endswith("shuffled") else "-")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return finish(fig, title, ax=ax, fontsize=9)

def image_learning_curves(curves: dict, title: str = ""):
    """Per model: train/test loss and accuracy vs step (mean ± std over seeds)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for j, (name, (steps, metrics)) in enumerate(curves.items()):
        c = f"C{j}"
        band(axes[0], steps, metrics["train_loss"], f"{name} train", color=c)
        band(axes[0], steps, metrics["test_loss"], f"{name} test", color=c, ls="--")
        band(axes[1], steps, metrics["train_accuracy"], f"{name} train", color=c)
        band(axes[1], steps, metrics["test_accuracy"], f"{name} test", color=c, ls="--")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("loss (eval mode)")
    axes[1].set_ylabel("accuracy (eval mode)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return finish(fig, title, fontsize=10)

def confusion_matrices(matrices: dict, title: str = ""):
    """Row-normalised confusion matrices (true class rows), one panel per model, counts annotated."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices), 3.4), squeeze=False)
    for ax, (name, cm) in zip(axes[0], matrices.items()):
        cm = np.asarray(cm)
        frac = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(cm):
            if v:
                ax.text(c, r, str(v), ha="center", va="center", fontsize=6,
                        color="white" if frac[r, c] > 0.5 else "black")
        k = cm.shape[0]
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: accuracy {np.trace(cm) / cm.sum():.3f}", fontsize=9)
    return finish(fig, title, fontsize=10)

def accuracy_vs_labels(summary: dict, source_accuracy: dict | None = None):
    """One panel per dataset: test accuracy (mean ± std over replicates) vs labels per class, one
    line per variant (scratch, augment, finetune, linear_probe)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(summary), figsize=(4.6 * len(summary), 3.5), squeeze=False)
    markers = {"scratch": "o", "augment": "s", "finetune": "^", "linear_probe": "v"}
    for ax, (dataset, by_v) in zip(axes[0], summary.items()):
        for v, s in by_v.items():
            n, m, e = np.asarray(s["labels_per_class"]), np.asarray(s["mean"]), np.asarray(s["std"])
            ax.errorbar(n, m, yerr=e, marker=markers.get(v, "o"), capsize=3, label=v)
        ax.set_xscale("log")
        ax.set_xticks(n, [str(int(v)) for v in n])
        ax.minorticks_off()  # the log axis's minor labels (3x10^1, ...) would overlap the n ticks
        ax.set_xlabel("labels per class")
        ax.set_ylabel("test accuracy")
        src = "" if not source_accuracy or dataset not in source_accuracy else \
            f" (source-task test acc. {source_accuracy[dataset]:.2f})"
        ax.set_title(f"{dataset}{src}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
