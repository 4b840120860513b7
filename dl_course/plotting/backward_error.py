"""Figures of backward error analysis of gradient descent (Barrett & Dherin 2021): distances
between GD and the gradient / modified flows against the step size and over time."""

from __future__ import annotations

import numpy as np

from dl_course.plotting.style import finish, pyplot

_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7")


def learning_rate_axis(ax, etas, references) -> None:
    """A log-log learning-rate axis: ticks at ``etas``, and a dotted reference line ``∝ η^order``
    through ``anchor`` at ``etas[0]`` for each ``(order, anchor, color)`` of ``references`` (the
    orders of accuracy a backward error analysis predicts)."""
    etas = np.asarray(etas)
    for order, anchor, color in references:
        ax.loglog(etas, anchor * (etas / etas[0]) ** order, ls=":", color=color, lw=1.0, label=f"slope {order}")
    ax.set_xticks(etas, [f"{e:.4g}" for e in etas])
    ax.xaxis.set_minor_formatter(pyplot().NullFormatter())
    ax.set_xlabel("learning rate η")


def backward_error_figure(res, *, title: str = ""):
    """Backward error analysis (Barrett & Dherin 2021): left, log–log distance at ``T`` between GD
    and the gradient flow / the modified flow vs the step size ``η``, with the fitted slopes and
    reference lines of slope 1 and 2; right, the distances along ``t ∈ (0, T]`` for every ``η``.

    Args:
      res: a :class:`dl_course.measures.BackwardErrorResult`.
    """
    plt = pyplot()

    etas = np.asarray(res.etas)
    gf, mf = res.dist_gradient_flow[:, -1], res.dist_modified_flow[:, -1]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    ax.loglog(etas, gf, "o-", color="C0", label=f"‖GD − gradient flow‖ (slope {res.slope_gradient_flow:.2f})")
    ax.loglog(etas, mf, "s-", color="C3", label=f"‖GD − modified flow‖ (slope {res.slope_modified_flow:.2f})")
    learning_rate_axis(ax, etas, ((1, gf[0], "C0"), (2, mf[0], "C3")))
    ax.set_ylabel(f"distance at T = {res.times[-1]:g}")
    ax.set_title(f"ODE integration error ≈ {res.integration_error:.1e}", fontsize=8)
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
    return finish(fig, title, fontsize=10)
