"""Figures of SGD's implicit regularizer (Smith et al. 2021) and label-noise SGD's drift: the order
of accuracy of the modified flows, test accuracy of the three arms and vs η/B, and tr ∇²L along the
continuation of GD, SGD and label-noise SGD."""

from __future__ import annotations

import numpy as np

from dl_course.plotting.backward_error import learning_rate_axis
from dl_course.plotting.style import finish, pyplot


def order_figure(res, *, title: str = ""):
    """Log–log distance between the one-epoch mean SGD iterate and the three flows vs ``η``, with
    the fitted slopes and reference lines of slope 2 and 3.

    Args:
      res: a :class:`dl_course.measures.SGDOrderResult`.
    """
    plt = pyplot()
    etas = np.asarray(res.etas)
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    curves = (("gradient_flow", res.dist_gradient_flow, "o-", "C0", "gradient flow of L"),
              ("gd_modified_flow", res.dist_gd_modified_flow, "s-", "C1", "flow of L + (η/4)‖∇L‖²"),
              ("sgd_modified_flow", res.dist_sgd_modified_flow, "^-", "C3", "flow of L + (η/4m)Σ‖∇L̂_k‖²"))
    for name, d, style, color, label in curves:
        ax.loglog(etas, d, style, color=color, label=f"{label} (slope {res.slopes[name]:.2f})")
    learning_rate_axis(ax, etas, ((2, res.dist_gradient_flow[0], "C0"), (3, res.dist_sgd_modified_flow[0], "C3")))
    ax.set_ylabel(f"‖mean SGD iterate − flow‖ after one epoch (m = {res.num_batches})")
    ax.set_title(f"mean over all {res.num_orders} orders; ODE error ≈ {res.integration_error:.1e}", fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return finish(fig, title, fontsize=9)


def generalization_figure(acc: dict, ci: dict, scan: list[dict], *, title: str = ""):
    """Left: test accuracy of each arm (one dot per seed, mean and 95% CI). Right: test accuracy
    (mean over scan seeds) vs η/B, one line per batch size, from the validation scan's converged runs."""
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    for i, (arm, v) in enumerate(acc.items()):
        ax.plot(np.full(len(v), i) + np.linspace(-0.12, 0.12, len(v)), v, "o", color="0.6", ms=3)
        lo, hi = ci[arm]["ci"]
        ax.errorbar([i], [ci[arm]["estimate"]], yerr=[[ci[arm]["estimate"] - lo], [hi - ci[arm]["estimate"]]],
                    fmt="s", color="C3", capsize=4)
    ax.set_xticks(range(len(acc)), [a.replace("_", "\n") for a in acc], fontsize=8)
    ax.set_ylabel("test accuracy")
    ax.set_title("arms at one learning rate and one train loss (mean, 95% CI)", fontsize=8)
    ax.grid(alpha=0.3)
    dropped = sum(not r["converged"] for r in scan)
    scan = [r for r in scan if r["converged"]]  # a run that diverged or missed the target is not at the same loss
    sizes = sorted({r["batch_size"] for r in scan})
    for j, b in enumerate(sizes):
        lrs = sorted({r["learning_rate"] for r in scan if r["batch_size"] == b})
        xs = [lr / b for lr in lrs]
        ys = [np.mean([r["test_accuracy"] for r in scan if r["batch_size"] == b and r["learning_rate"] == lr])
              for lr in lrs]
        bx.semilogx(xs, ys, "o-", color=f"C{j}", label=f"B = {b}")
    bx.set_xlabel("η / B")
    bx.set_ylabel("test accuracy (mean over scan seeds)")
    bx.set_title(f"validation scan, runs at the target train loss ({dropped} diverged or short: not shown)",
                 fontsize=8)
    bx.legend(fontsize=7)
    bx.grid(alpha=0.3, which="both")
    return finish(fig, title, fontsize=9)


def label_noise_figure(steps, traces, rows, *, title: str = ""):
    """tr ∇²L (Hutchinson) along the continuation, one line per run (mean over seeds): GD and SGD
    flat, label-noise SGD falling faster for larger η and σ."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    groups = {}
    for i, r in enumerate(rows):
        groups.setdefault((r["kind"], r["learning_rate"], r["sigma"]), []).append(i)
    cmap = plt.get_cmap("viridis")
    noisy = sorted(k for k in groups if k[0] == "label_noise_sgd")
    for (kind, eta, sigma), idx in groups.items():
        mean = np.mean(traces[idx], 0)
        if kind == "label_noise_sgd":
            c = cmap(noisy.index((kind, eta, sigma)) / max(len(noisy) - 1, 1))
            ax.plot(steps, mean, color=c, lw=1.2, label=f"label noise η={eta:g}, σ={sigma:g}")
        else:
            ax.plot(steps, mean, color="k", ls="--" if kind == "gd" else ":", lw=1.5, label=f"{kind.upper()} η={eta:g}")
    ax.set_xlabel("steps after reaching zero training loss")
    ax.set_ylabel("tr ∇²L (Hutchinson)")
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    return finish(fig, title, fontsize=9)
