"""Figures ranking generalization measures: Kendall τ and granulated Ψ per measure (grouped by
family), and the best and worst measure against the generalization gap."""

from __future__ import annotations

import numpy as np
from scipy import stats

from dl_course.plotting.style import colors, pyplot


def tau_psi_bars(table: dict, families: dict, title: str = "", intervals: dict | None = None,
                 ceiling: float | None = None):
    """One pair of horizontal bars (τ, Ψ) per measure, measures grouped by family; ``intervals``
    (``{"kendall_tau": {name: [low, high]}, "granulated_psi": {...}}``) draws their 95% CIs and
    ``ceiling`` a vertical line at the noise ceiling of τ."""
    plt = pyplot()
    names = [n for fam in families.values() for n in fam if n in table["kendall_tau"]]
    fam_of = {n: f for f, members in families.items() for n in members}
    palette = dict(zip(families, colors(len(families), "tab10")))
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(names) + 1.2))
    y = np.arange(len(names))
    tau = [table["kendall_tau"][n] for n in names]
    psi = [table["granulated_psi"][n] for n in names]
    ax.barh(y - 0.2, tau, 0.4, color=[palette[fam_of[n]] for n in names], alpha=0.45, label="Kendall τ")
    ax.barh(y + 0.2, psi, 0.4, color=[palette[fam_of[n]] for n in names], label="granulated Ψ")
    for key, values, dy in (("kendall_tau", tau, -0.2), ("granulated_psi", psi, 0.2)):
        ci = (intervals or {}).get(key)
        if ci:
            lo = np.asarray([values[i] - ci[n][0] for i, n in enumerate(names)])
            hi = np.asarray([ci[n][1] - values[i] for i, n in enumerate(names)])
            ax.errorbar(values, y + dy, xerr=np.maximum([lo, hi], 0), fmt="none", ecolor="k", elinewidth=0.7,
                        capsize=1.5, label="95% CI" if key == "kendall_tau" else None)
    if ceiling is not None and np.isfinite(ceiling):
        ax.axvline(ceiling, color="grey", ls="--", lw=0.8, label=f"noise ceiling of τ ({ceiling:.2f})")
    ax.set_yticks(y, [f"{n}  ({fam_of[n]})" for n in names], fontsize=7)
    ax.axvline(0, color="k", lw=0.6)
    ax.invert_yaxis()
    ax.set_xlabel("correlation with the generalization gap (light: τ, dark: Ψ)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def measure_vs_gap(measures: dict, gap, psi: dict):
    """Scatter of each given measure (x) against the gap (y), with its Spearman ρ and Ψ."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(measures), figsize=(4.2 * len(measures), 3.4), squeeze=False)
    for ax, (name, values) in zip(axes[0], measures.items()):
        ax.scatter(values, gap, s=8, alpha=0.7)
        rho = stats.spearmanr(values, gap).statistic
        ax.set_title(f"{name}: Ψ = {psi[name]:.2f}, Spearman ρ = {rho:.2f}", fontsize=8)
        ax.set_xlabel(name)
        ax.set_ylabel("test error − train error")
    fig.tight_layout()
    return fig


def psi_by_axis_heatmap(psi_by_axis: dict, names: list, axes: list, title: str = ""):
    """Heat map of ψ per measure (rows, in the given order) and hyperparameter axis (columns):
    the mean τ between the measure and the gap among models that differ only in that axis
    (Jiang et al. 2020's per-axis terms of Ψ) — which hyperparameter's effect on the gap each
    measure tracks. Blank where an axis has no group (nan)."""
    plt = pyplot()
    grid = np.asarray([[psi_by_axis[n].get(a, np.nan) for a in axes] for n in names], float)
    fig, ax = plt.subplots(figsize=(1.0 * len(axes) + 3.2, 0.24 * len(names) + 1.4))
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
    ax.set_xticks(range(len(axes)), [a.replace("_", " ") for a in axes], rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03, label="ψ (mean τ within one-axis groups)")
    fig.tight_layout()
    return fig
