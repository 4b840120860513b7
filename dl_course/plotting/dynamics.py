"""Figures of the Module 2 training-dynamics studies: edge of stability, max-margin implicit bias,
and implicit gradient regularization (backward error analysis)."""

from __future__ import annotations

import numpy as np

_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7")
_STYLES = ("-", "--", ":", "-.")


def _finite(v):
    v = np.asarray(v, float)
    return np.where(np.isfinite(v), v, np.nan)


def edge_of_stability_figure(steps, train_loss, sharpness, thresholds, labels, *, sharpness_steps=None,
                             sharpness_label: str = "λmax (Hessian)", threshold_label: str = "2/η", title: str = ""):
    """Cohen et al. (2021, Fig. 1) layout: one column per run (learning rate); top row the train
    loss, bottom row the sharpness with the run's stability threshold as a dashed line.

    Args:
      steps: ``[eval]`` steps of ``train_loss``; train_loss, sharpness: ``[run, eval]``;
      thresholds: ``[run]`` (2/η for GD, 38/η for Adam's preconditioned sharpness);
      labels: panel title per run; sharpness_steps: steps of ``sharpness`` (default ``steps``).
    """
    import matplotlib.pyplot as plt

    sharpness_steps = steps if sharpness_steps is None else sharpness_steps
    n = len(labels)
    fig, axes = plt.subplots(2, n, figsize=(3.0 * n, 5.0), sharex=True, squeeze=False)
    for i in range(n):
        color = _COLORS[i % len(_COLORS)]
        ax = axes[0, i]
        ax.plot(steps, _finite(train_loss[i]), color=color, lw=1.0)
        ax.set_yscale("log")
        ax.set_title(labels[i], fontsize=9)
        ax.grid(alpha=0.3)
        ax = axes[1, i]
        ax.plot(sharpness_steps, _finite(sharpness[i]), color=color, lw=1.0)
        ax.axhline(thresholds[i], color="k", ls="--", lw=1.0, label=f"{threshold_label} = {thresholds[i]:.3g}")
        top = np.nanmax(np.r_[_finite(sharpness[i]), thresholds[i]])
        ax.set_ylim(0, 1.15 * top if np.isfinite(top) else None)
        ax.set_xlabel("step")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("train loss")
    axes[1, 0].set_ylabel(sharpness_label)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def sharpness_ratio_figure(steps, ratios, labels, *, threshold_label: str = "2/η", title: str = ""):
    """All runs in one panel: tracked sharpness divided by each run's threshold (1 = the edge)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for i, label in enumerate(labels):
        ax.plot(steps, _finite(ratios[i]), color=_COLORS[i % len(_COLORS)], lw=1.0, label=label)
    ax.axhline(1.0, color="k", ls="--", lw=1.0)
    ax.set_xlabel("step")
    ax.set_ylabel(f"sharpness / ({threshold_label})")
    ax.set_ylim(0, None)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def max_margin_figure(panels, *, title: str = ""):
    """Implicit bias on separable data (Soudry et al. 2018, Fig. 1 layout, plus the ℓ∞ geometry):
    one row per dataset, columns vs log t: ``1 − cos`` to the ℓ2 max-margin direction, to the ℓ∞
    one, ``‖w(t)‖₂``, and the ℓ2- and ℓ∞-normalized margins relative to their maxima.

    Args:
      panels: list of dicts (one per dataset / row) with ``name``, ``steps [T]``, and ``runs``: a
        list of dicts with ``label``, ``optimizer``, ``style_index``, ``one_minus_cos_l2 [T]``,
        ``one_minus_cos_linf [T]``, ``norm [T]``, ``margin_ratio_l2 [T]``,
        ``margin_ratio_linf [T]``; optionally ``norm_reference`` (``(steps, values)`` of
        ``log t / γ*₂``, the asymptote of GD's norm).
    """
    import matplotlib.pyplot as plt

    cols = [("one_minus_cos_l2", "1 − cos(w(t), w*ℓ2)", True), ("one_minus_cos_linf", "1 − cos(w(t), w*ℓ∞)", True),
            ("norm", "‖w(t)‖₂", True), ("margin_ratio_l2", "ℓ2-normalized margin / max", False),
            ("margin_ratio_linf", "ℓ∞-normalized margin / max", False)]
    fig = plt.figure(figsize=(3.1 * len(cols), 3.0 * len(panels) + 0.9), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(len(panels), 1))
    handles = {}
    for sub, panel in zip(subfigs, panels):
        axes = sub.subplots(1, len(cols))
        optimizers = list(dict.fromkeys(run["optimizer"] for run in panel["runs"]))
        for ax, (key, label, logy) in zip(axes, cols):
            for run in panel["runs"]:
                color = _COLORS[optimizers.index(run["optimizer"]) % len(_COLORS)]
                v = _finite(run[key])
                if logy:
                    v = np.where(v > 0, v, np.nan)
                (line,) = ax.plot(panel["steps"], v, color=color, ls=_STYLES[run["style_index"] % len(_STYLES)],
                                  lw=1.1)
                handles.setdefault(run["label"], line)
            if key == "norm" and panel.get("norm_reference") is not None:
                ref_t, ref_v = panel["norm_reference"]
                (line,) = ax.plot(ref_t, ref_v, color="k", ls=":", lw=1.0)
                handles.setdefault("slope 1/γ*ℓ2 per unit log t (Soudry et al.)", line)
            if key.startswith("margin_ratio"):
                ax.axhline(1.0, color="k", lw=0.8, ls=":")
                ax.set_ylim(-0.2, 1.1)
            ax.set_xscale("log")
            if logy:
                ax.set_yscale("log")
            ax.set_xlabel("step t")
            ax.set_title(label, fontsize=8)
            ax.grid(alpha=0.3, which="major")
        sub.suptitle(panel["name"], fontsize=9)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(5, len(handles)),
               fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def igr_figure(res, *, title: str = ""):
    """Backward error analysis (Barrett & Dherin 2021): left, log–log distance at ``T`` between GD
    and the gradient flow / the modified flow vs the step size ``η``, with the fitted slopes and
    reference lines of slope 1 and 2; right, the distances along ``t ∈ (0, T]`` for every ``η``.

    Args:
      res: a :class:`dl_course.studies.igr.BackwardErrorResult`.
    """
    import matplotlib.pyplot as plt

    etas = np.asarray(res.etas)
    gf, mf = res.dist_gradient_flow[:, -1], res.dist_modified_flow[:, -1]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    ax.loglog(etas, gf, "o-", color="C0", label=f"‖GD − gradient flow‖ (slope {res.slope_gradient_flow:.2f})")
    ax.loglog(etas, mf, "s-", color="C3", label=f"‖GD − modified flow‖ (slope {res.slope_modified_flow:.2f})")
    for order, anchor, color in ((1, gf[0], "C0"), (2, mf[0], "C3")):
        ax.loglog(etas, anchor * (etas / etas[0]) ** order, ls=":", color=color, lw=1.0, label=f"slope {order}")
    ax.set_xticks(etas, [f"{e:.4g}" for e in etas])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("learning rate η")
    ax.set_ylabel(f"distance at T = {res.times[-1]:g}")
    ax.set_title(f"RK4 integration error ≈ {res.rk4_error:.1e}", fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    for k, eta in enumerate(etas):
        color = _COLORS[k % len(_COLORS)]
        bx.semilogy(res.times, res.dist_gradient_flow[k], color=color, ls="-", lw=1.0, label=f"η={eta:.4g}")
        bx.semilogy(res.times, res.dist_modified_flow[k], color=color, ls="--", lw=1.0)
    bx.set_xlabel("time t = kη")
    bx.set_ylabel("distance between GD and flow")
    bx.set_title("solid: gradient flow, dashed: modified flow", fontsize=8)
    bx.legend(fontsize=7, ncol=2)
    bx.grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
