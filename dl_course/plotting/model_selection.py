"""Figures of model selection: cross-validation and test error vs a hyperparameter, and vs
training time (early stopping)."""

from __future__ import annotations

import numpy as np

from dl_course.plotting.style import pyplot


def cv_curves(candidates, cv_mean, cv_std, test, test_std, steps, best: int, one_se: int, t_best: int, k: int,
              n_train: int):
    """Left: k-fold CV error (mean ± std over folds) and held-out test error (mean ± std over
    seeds) per candidate L2 penalty, the CV choice and the one-standard-error choice marked.
    Right: the same two errors vs training steps for the unregularised candidate (early stopping)."""
    plt = pyplot()
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
