"""Figures of the implicit bias of optimizers on separable data (Soudry et al. 2018; Gunasekar et
al. 2018): direction, norm and margins of w(t) against the exact max-margin solutions."""

from __future__ import annotations

import numpy as np

from dl_course.plotting.style import finite, pyplot

_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7")
_STYLES = ("-", "--", ":", "-.")


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
    plt = pyplot()

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
                v = finite(run[key])
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
