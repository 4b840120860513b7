"""Figures of the Module 1 studies: MNIST-1D baselines, universality, cross-validation,
augmentation / transfer with few labels, and image CNNs."""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _band(ax, x, values, label, **kw):
    """Mean line and ±1 std band of ``values[run, point]``."""
    v = np.asarray(values, float)
    m, s = np.nanmean(v, 0), np.nanstd(v, 0)
    (line,) = ax.plot(x, m, label=label, **kw)
    ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.2, lw=0)
    return line


def baseline_bars(table: dict, title: str = "MNIST-1D test accuracy: ours (mean ± std) vs Greydanus & Kobak"):
    """Grouped bars per model: default and shuffled, ours with error bars, the paper's as markers."""
    plt = _plt()
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
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    colors = {}
    for label, (steps, values) in curves.items():
        base = label.replace(" shuffled", "")
        colors.setdefault(base, f"C{len(colors)}")
        _band(ax, steps, values, label, color=colors[base], ls="--" if label.endswith("shuffled") else "-")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def image_learning_curves(curves: dict, title: str = ""):
    """Per model: train/test loss and accuracy vs step (mean ± std over seeds)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for j, (name, (steps, metrics)) in enumerate(curves.items()):
        c = f"C{j}"
        _band(axes[0], steps, metrics["train_loss"], f"{name} train", color=c)
        _band(axes[0], steps, metrics["test_loss"], f"{name} test", color=c, ls="--")
        _band(axes[1], steps, metrics["train_accuracy"], f"{name} train", color=c)
        _band(axes[1], steps, metrics["test_accuracy"], f"{name} test", color=c, ls="--")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("loss (eval mode)")
    axes[1].set_ylabel("accuracy (eval mode)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def confusion_matrices(matrices: dict, title: str = ""):
    """Row-normalised confusion matrices (true class rows), one panel per model, counts annotated."""
    plt = _plt()
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
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def universality_error(widths, arrays: dict, targets: list, slopes: dict):
    """Test MSE (solid, mean ± std over seeds) and train MSE (dashed) vs width, log-log, per
    target, with the fitted slope in the legend and reference lines w^-1 and w^-4."""
    plt = _plt()
    w = np.asarray(widths, float)
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for j, t in enumerate(targets):
        c = f"C{j}"
        _band(ax, w, arrays[f"{t}/test_mse"], f"{t} test (slope {slopes[t]:.2f})", color=c, marker="o", ms=3)
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
    plt = _plt()
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


def cv_curves(candidates, cv_mean, cv_std, test, test_std, steps, best: int, one_se: int, t_best: int, k: int,
              n_train: int):
    """Left: k-fold CV error (mean ± std over folds) and held-out test error (mean ± std over
    seeds) per candidate L2 penalty, the CV choice and the one-standard-error choice marked.
    Right: the same two errors vs training steps for the unregularised candidate (early stopping)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.5))
    ax = axes[0]
    x = np.arange(len(candidates))
    ax.errorbar(x, cv_mean[:, -1], yerr=cv_std[:, -1], marker="o", capsize=3, label=f"{k}-fold CV error")
    ax.errorbar(x, test[:, -1], yerr=test_std[:, -1], marker="s", capsize=3, label="test error (trained on all)")
    ax.axvline(best, color="C0", ls="--", lw=1, label=f"CV choice l2={candidates[best]:g}")
    if one_se != best:
        ax.axvline(one_se, color="C0", ls=":", lw=1, label=f"1-SE choice l2={candidates[one_se]:g}")
    ax.set_xticks(x, [f"{c:g}" for c in candidates], rotation=30, fontsize=7)
    ax.set_xlabel("L2 penalty")
    ax.set_ylabel("classification error")
    ax.set_title(f"choosing L2 by {k}-fold CV (n = {n_train})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(steps, cv_mean[0], label="CV error", color="C0")
    ax.fill_between(steps, cv_mean[0] - cv_std[0], cv_mean[0] + cv_std[0], color="C0", alpha=0.2, lw=0)
    ax.plot(steps, test[0], label="test error", color="C1")
    ax.axvline(steps[t_best], color="C0", ls="--", lw=1, label=f"CV choice: step {steps[t_best]}")
    ax.set_xlabel("training step")
    ax.set_ylabel("classification error")
    ax.set_title(f"training time as the hyperparameter (l2 = {candidates[0]:g})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def accuracy_vs_labels(summary: dict, source_accuracy: dict | None = None):
    """One panel per dataset: test accuracy (mean ± std over replicates) vs labels per class, one
    line per variant (scratch, augment, finetune, linear_probe)."""
    plt = _plt()
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
