"""Figures ranking generalization measures: Kendall τ and granulated Ψ per measure (grouped by
family), and the best and worst measure against the generalization gap."""

from __future__ import annotations

import numpy as np
from scipy import stats

from dl_course.plotting.style import colors, pyplot


def tau_psi_bars(table: dict, families: dict, title: str = ""):
    """One pair of horizontal bars (τ, Ψ) per measure, measures grouped by family."""
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
