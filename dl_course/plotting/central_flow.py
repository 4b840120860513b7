"""Figures of central flows (Cohen et al. 2025): GD, its time average, its central flow and the
gradient flow side by side, one column per learning rate."""

from __future__ import annotations

import numpy as np

from dl_course.measures.implicit_bias.central_flow import time_average
from dl_course.plotting.style import finite, pyplot


def central_flow_figure(sim, labels, *, window: int, title: str = ""):
    """Three rows per run (column): (1) GD's loss at every step (light), its centered
    ``window``-step average, the central flow's predicted time-averaged loss ``L + tr(Σ)/η``, the
    loss at the flow's own weights and the gradient flow's loss; (2) λmax of GD, of the central flow
    (with its other tracked eigenvalues) and of the gradient flow, against 2/η; (3) the distance of
    GD to each flow relative to GD's distance from the initialization.

    Args:
      sim: the dict of :func:`dl_course.studies.central_flow.simulate` (arrays with a leading run axis).
      labels: one title per run.
    """
    plt = pyplot()
    n = len(labels)
    fig, axes = plt.subplots(3, n, figsize=(4.2 * n, 8.4), squeeze=False)
    times = np.asarray(sim["times"])
    steps = np.arange(sim["gd_losses"].shape[1])
    avg = time_average(sim["gd_losses"], window)
    for i, label in enumerate(labels):
        eta = float(sim["grid"][i]["learning_rate"])
        thr = 2.0 / eta
        ax, bx, cx = axes[:, i]
        ax.plot(steps, finite(sim["gd_losses"][i]), color="0.75", lw=0.5, label="GD")
        ax.plot(steps, avg[i], color="C0", lw=2.0, label=f"GD, {window}-step average")
        ax.plot(times, sim["cf_predicted_loss"][i], color="k", ls="--", lw=1.2, label="central flow: L + tr(Σ)/η")
        ax.plot(times, sim["cf_loss"][i], color="k", lw=0.8, alpha=0.6, label="central flow: L(w)")
        ax.plot(times, sim["gf_loss"][i], color="C3", ls=":", lw=1.5, label="gradient flow")
        ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3, which="both")
        bx.plot(times, finite(sim["gd_sharpness"][i]), color="0.6", lw=0.8, label="GD")
        tracked = sim["cf_eigenvalues"][i]
        for j in range(1, tracked.shape[1]):
            bx.plot(times, tracked[:, j], color="k", lw=0.5, alpha=0.4)
        bx.plot(times, sim["cf_sharpness"][i], color="k", lw=1.5, label="central flow (λ1..λk thin)")
        bx.plot(times, sim["gf_sharpness"][i], color="C3", ls=":", lw=1.5, label="gradient flow")
        bx.axhline(thr, color="C2", ls="--", lw=1.0, label="2/η")
        bx.set_xlabel("step")
        bx.set_ylim(0, 1.6 * thr)
        bx.grid(alpha=0.3)
        base = np.linalg.norm(sim["gd_weights"][i] - sim["w0"][i], axis=-1)
        base = np.where(base > 0, base, np.nan)
        cx.plot(times, np.linalg.norm(sim["gd_weights"][i] - sim["cf_weights"][i], axis=-1) / base, color="k",
                label="central flow")
        cx.plot(times, np.linalg.norm(sim["gd_weights"][i] - sim["gf_weights"][i], axis=-1) / base, color="C3",
                ls=":", lw=1.5, label="gradient flow")
        cx.set_xlabel("step")
        cx.set_ylim(bottom=0)
        cx.grid(alpha=0.3)
        if i == 0:
            ax.set_ylabel("training loss")
            bx.set_ylabel("λmax")
            cx.set_ylabel("‖w_GD − w_flow‖ / ‖w_GD − w_0‖")
            for a in (ax, bx, cx):
                a.legend(fontsize=6.5)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
