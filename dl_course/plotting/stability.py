"""Figures of the edge of stability (Cohen et al. 2021; 2022 for Adam): loss and tracked sharpness
against each run's stability threshold."""

from __future__ import annotations

import numpy as np

from dl_course.plotting.style import finish, finite, pyplot

_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7")


def edge_of_stability_figure(steps, train_loss, sharpness, thresholds, labels, *, sharpness_steps=None,
                             sharpness_label: str = "λmax (Hessian)", threshold_label: str = "2/η", title: str = ""):
    """Cohen et al. (2021, Fig. 1) layout: one column per run (learning rate); top row the train
    loss, bottom row the sharpness with the run's stability threshold as a dashed line.

    Args:
      steps: ``[eval]`` steps of ``train_loss``; train_loss, sharpness: ``[run, eval]``;
      thresholds: ``[run]`` (2/η for GD, 38/η for Adam's preconditioned sharpness);
      labels: panel title per run; sharpness_steps: steps of ``sharpness`` (default ``steps``).
    """
    plt = pyplot()

    sharpness_steps = steps if sharpness_steps is None else sharpness_steps
    n = len(labels)
    fig, axes = plt.subplots(2, n, figsize=(3.0 * n, 5.0), sharex=True, squeeze=False)
    for i in range(n):
        color = _COLORS[i % len(_COLORS)]
        ax = axes[0, i]
        ax.plot(steps, finite(train_loss[i]), color=color, lw=1.0)
        ax.set_yscale("log")
        ax.set_title(labels[i], fontsize=9)
        ax.grid(alpha=0.3)
        ax = axes[1, i]
        ax.plot(sharpness_steps, finite(sharpness[i]), color=color, lw=1.0)
        ax.axhline(thresholds[i], color="k", ls="--", lw=1.0, label=f"{threshold_label} = {thresholds[i]:.3g}")
        top = np.nanmax(np.r_[finite(sharpness[i]), thresholds[i]])
        ax.set_ylim(0, 1.15 * top if np.isfinite(top) else None)
        ax.set_xlabel("step")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("train loss")
    axes[1, 0].set_ylabel(sharpness_label)
    return finish(fig, title, fontsize=10)


def sharpness_ratio_figure(steps, ratios, labels, *, threshold_label: str = "2/η", title: str = ""):
    """All runs in one panel: tracked sharpness divided by each run's threshold (1 = the edge)."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for i, label in enumerate(labels):
        ax.plot(steps, finite(ratios[i]), color=_COLORS[i % len(_COLORS)], lw=1.0, label=label)
    ax.axhline(1.0, color="k", ls="--", lw=1.0)
    ax.set_xlabel("step")
    ax.set_ylabel(f"sharpness / ({threshold_label})")
    ax.set_ylim(0, None)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return finish(fig, title, ax=ax, fontsize=9)
