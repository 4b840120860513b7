"""Figures of flatness and sharpness across trained solutions: λmax, Hessian trace and test
accuracy against the batch size and the SGD noise scale η/B, the landscapes of two solutions, and
measures against test accuracy by optimizer. Every function takes plain arrays and returns a
matplotlib figure; the results layer writes it (``RunDir.figure``)."""

from __future__ import annotations

import numpy as np

from dl_course.plotting.style import colors, finite, pyplot


def batch_size_panels(batch_size, learning_rate, lambda_max, hessian_trace, test_accuracy, train_loss, left_out,
                      title: str = ""):
    """Four panels over all runs (one point per run, colour = batch size; runs flagged in
    ``left_out`` — diverged, or short of a target loss — are not drawn):
    λmax vs the final training loss (the cross-entropy Hessian shrinks as the loss falls, so
    sharpness is compared at equal loss: read the panel vertically); λmax, Hessian trace and test
    accuracy vs η/B (Jastrzębski et al. 2017: the SGD noise scale η/B sets the flatness)."""
    plt = pyplot()
    bs, lr = np.asarray(batch_size, float), np.asarray(learning_rate, float)
    ok = ~np.asarray(left_out, bool)
    sizes = sorted(set(bs.tolist()))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    for c, b in zip(colors(len(sizes)), sizes):
        sel = ok & (bs == b)
        for ax, x, y in ((axes[0], train_loss, lambda_max), (axes[1], lr / bs, lambda_max),
                         (axes[2], lr / bs, hessian_trace), (axes[3], lr / bs, test_accuracy)):
            ax.scatter(np.asarray(x, float)[sel], finite(y)[sel], color=c, s=22, label=f"B={int(b)}", alpha=0.85)
    for ax, xl, yl in ((axes[0], "final training loss", "λmax (top Hessian eigenvalue)"),
                       (axes[1], "η / B", "λmax"), (axes[2], "η / B", "Hessian trace"),
                       (axes[3], "η / B", "test accuracy")):
        ax.set_xscale("log")
        if ax is not axes[3]:
            ax.set_yscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def landscape_panels(slice_alphas, slices: dict, interp_alphas, interp: dict, labels=("small batch", "large batch"),
                     title: str = ""):
    """Left: 1D filter-normalized slices ``L(θ + α d)`` (Li et al. 2018) of two solutions, train
    loss solid and test loss dashed. Right: the interpolation ``θ(α) = (1 − α) θ_a + α θ_b``
    between them (Keskar et al. 2017, Fig. 3): loss (log scale) and accuracy.

    ``slices``: dict with ``train_loss``, ``test_loss`` of shape ``[2, len(slice_alphas)]``;
    ``interp``: dict with ``train_loss``, ``test_loss``, ``train_accuracy``, ``test_accuracy``
    of shape ``[len(interp_alphas)]``.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (c, lab) in enumerate(zip(("tab:blue", "tab:red"), labels)):
        axes[0].plot(slice_alphas, finite(slices["train_loss"][i]), color=c, label=f"{lab}: train")
        axes[0].plot(slice_alphas, finite(slices["test_loss"][i]), color=c, ls="--", label=f"{lab}: test")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("α (filter-normalized direction d)")
    axes[0].set_ylabel("loss  L(θ + α d)")
    axes[0].set_title("1D filter-normalized slices", fontsize=9)
    axes[0].legend(fontsize=7)
    ax = axes[1]
    ax.plot(interp_alphas, finite(interp["train_loss"]), "k-", label="train loss")
    ax.plot(interp_alphas, finite(interp["test_loss"]), "k--", label="test loss")
    ax.set_yscale("log")
    ax.set_xlabel(f"α  ({labels[0]} at 0, {labels[1]} at 1)")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(interp_alphas, interp["train_accuracy"], color="tab:green", label="train accuracy")
    ax2.plot(interp_alphas, interp["test_accuracy"], color="tab:green", ls="--", label="test accuracy")
    ax2.set_ylabel("accuracy", color="tab:green")
    ax2.set_ylim(0, 1.02)
    for a in (0.0, 1.0):
        ax.axvline(a, color="grey", lw=0.8, alpha=0.5)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper center")
    ax.set_title("linear interpolation between the two solutions", fontsize=9)
    for a in axes:
        a.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def optimizer_scatter(optimizer, learning_rate, test_accuracy, measures: dict, left_out, title: str = ""):
    """One panel per measure (e.g. λmax, Hessian trace, normalized margin) against test accuracy,
    one point per run, colour = optimizer, marker size growing with the learning rate (rank
    within the optimizer's grid). Runs flagged in ``left_out`` (diverged, or short of a target
    loss) are not drawn."""
    plt = pyplot()
    opt = np.asarray(optimizer, dtype=object)
    lr = np.asarray(learning_rate, float)
    ok = ~np.asarray(left_out, bool)
    names = list(dict.fromkeys(opt.tolist()))
    fig, axes = plt.subplots(1, len(measures), figsize=(4.6 * len(measures), 3.6), squeeze=False)
    palette = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")
    for ax, (mname, (values, logx)) in zip(axes[0], measures.items()):
        v = finite(values)
        for c, name in zip(palette, names):
            sel = (opt == name) & ok
            lrs = sorted(set(lr[opt == name].tolist()))
            size = np.array([14 + 14 * lrs.index(x) for x in lr[sel]])
            ax.scatter(v[sel], np.asarray(test_accuracy, float)[sel], s=size, color=c, alpha=0.8, label=name,
                       edgecolor="k", linewidth=0.3)
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(mname)
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].legend(fontsize=7, title="optimizer (size ∝ lr rank)", title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
