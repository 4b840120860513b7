"""Figures of the Module 2 generalization studies: batch size and sharpness, random labels,
double descent, and the optimizer comparison. Every function takes plain arrays / lists and
returns a matplotlib figure (saved by ``dl_course.results``)."""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _colors(n: int, cmap: str = "viridis"):
    plt = _plt()
    return [plt.get_cmap(cmap)(v) for v in np.linspace(0.0, 0.9, max(n, 1))]


def _finite(v):
    v = np.asarray(v, float)
    return np.where(np.isfinite(v), v, np.nan)


def batch_size_panels(batch_size, learning_rate, lambda_max, hessian_trace, test_accuracy, train_loss, diverged,
                      title: str = ""):
    """Four panels over all runs (one point per run, colour = batch size, diverged runs left out):
    λmax vs the final training loss (the cross-entropy Hessian shrinks as the loss falls, so
    sharpness is compared at equal loss: read the panel vertically); λmax, Hessian trace and test
    accuracy vs η/B (Jastrzębski et al. 2017: the SGD noise scale η/B sets the flatness)."""
    plt = _plt()
    bs, lr = np.asarray(batch_size, float), np.asarray(learning_rate, float)
    ok = ~np.asarray(diverged, bool)
    sizes = sorted(set(bs.tolist()))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    for c, b in zip(_colors(len(sizes)), sizes):
        sel = ok & (bs == b)
        for ax, x, y in ((axes[0], train_loss, lambda_max), (axes[1], lr / bs, lambda_max),
                         (axes[2], lr / bs, hessian_trace), (axes[3], lr / bs, test_accuracy)):
            ax.scatter(np.asarray(x, float)[sel], _finite(y)[sel], color=c, s=22, label=f"B={int(b)}", alpha=0.85)
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
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (c, lab) in enumerate(zip(("tab:blue", "tab:red"), labels)):
        axes[0].plot(slice_alphas, _finite(slices["train_loss"][i]), color=c, label=f"{lab}: train")
        axes[0].plot(slice_alphas, _finite(slices["test_loss"][i]), color=c, ls="--", label=f"{lab}: test")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("α (filter-normalized direction d)")
    axes[0].set_ylabel("loss  L(θ + α d)")
    axes[0].set_title("1D filter-normalized slices", fontsize=9)
    axes[0].legend(fontsize=7)
    ax = axes[1]
    ax.plot(interp_alphas, _finite(interp["train_loss"]), "k-", label="train loss")
    ax.plot(interp_alphas, _finite(interp["test_loss"]), "k--", label="test loss")
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


def random_labels_panels(steps, curves: list[dict], fits: list[dict], title: str = ""):
    """Zhang et al. (2017), Fig. 1: (a) training loss vs step; (b) steps to fit the training set
    vs the fraction of random labels; (c) test accuracy vs the fraction.

    ``curves``: one dict per line with ``loss`` ``[eval]``, ``p`` (label fraction or None),
    ``style`` ("-" / "--"), ``label``, ``color`` (None: coloured by ``p``). ``fits``: one dict per
    series (e.g. per model) with ``p`` ``[k]``, ``steps_to_fit`` ``[k]`` (nan: never),
    ``test_accuracy`` ``[k]``, ``label``, ``marker``, and optional ``extra``: list of
    ``(label, steps_to_fit, test_accuracy)`` for input corruptions drawn as horizontal lines.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    cmap = plt.get_cmap("plasma")
    for cv in curves:
        color = cv.get("color") or cmap(0.85 * float(cv["p"]))
        axes[0].plot(steps, _finite(cv["loss"]), color=color, ls=cv.get("style", "-"), lw=1.2, label=cv["label"])
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss (on the labels trained on)")
    axes[0].legend(fontsize=6, ncol=2)
    styles = ("-", "--", ":", "-.")
    for k, f in enumerate(fits):
        p = np.asarray(f["p"], float)
        axes[1].plot(p, _finite(f["steps_to_fit"]), marker=f.get("marker", "o"), label=f["label"])
        axes[2].plot(p, _finite(f["test_accuracy"]), marker=f.get("marker", "o"), label=f["label"])
        for j, (lab, s, acc) in enumerate(f.get("extra", [])):
            c = axes[1].lines[-1].get_color()
            if np.isfinite(s):
                axes[1].axhline(s, color=c, ls=styles[(j + 1) % 4], lw=0.9, label=f"{f['label']}: {lab}")
            axes[2].axhline(acc, color=c, ls=styles[(j + 1) % 4], lw=0.9, label=f"{f['label']}: {lab}")
    axes[1].set_xlabel("fraction of random labels p")
    axes[1].set_ylabel("steps to 100% train accuracy")
    axes[2].axhline(0.1, color="k", lw=0.8, alpha=0.6)
    axes[2].text(0.0, 0.11, "chance", fontsize=7)
    axes[2].set_xlabel("fraction of random labels p")
    axes[2].set_ylabel("test accuracy")
    for a in axes:
        a.grid(alpha=0.3)
    axes[1].legend(fontsize=6)
    axes[2].legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def double_descent_panels(num_features, n_train, rf: dict, widths, mlp: dict, title: str = ""):
    """Belkin et al. (2019) Fig. 2 and Nakkiran et al. (2019) Fig. 1 in three panels.

    (a) random ReLU features, min-norm least squares: train and test squared loss and the norm
    of the solution vs the number of features ``p`` (the interpolation threshold ``p = n``
    marked); (b) their test and train 0–1 error; (c) an MLP's test and train 0–1 error vs its
    width, one line per label-noise level.

    ``rf``: ``train_mse``, ``test_mse``, ``train_error``, ``test_error``, ``coef_norm``, each
    ``[seed, len(num_features)]``. ``mlp``: dict noise label -> dict ``train_error``,
    ``test_error`` ``[seed, len(widths)]``.
    """
    plt = _plt()
    p = np.asarray(num_features, float)
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))

    def band(ax, x, v, color, label, ls="-", marker=None):
        v = np.asarray(v, float)
        mean = np.nanmean(v, 0)
        ax.plot(x, mean, color=color, ls=ls, marker=marker, ms=3, label=label)
        if v.shape[0] > 1:
            ax.fill_between(x, np.nanmin(v, 0), np.nanmax(v, 0), color=color, alpha=0.15, lw=0)

    ax = axes[0]
    band(ax, p, rf["test_mse"], "tab:red", "test squared loss")
    band(ax, p, rf["train_mse"], "tab:blue", "train squared loss", ls="--")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_ylabel("squared loss (mean over examples)")
    ax2 = ax.twinx()
    band(ax2, p, rf["coef_norm"], "tab:grey", "‖β̂‖ (min-norm solution)", ls=":")
    ax2.set_yscale("log")
    ax2.set_ylabel("‖β̂‖_F", color="tab:grey")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7)
    ax.set_title("random ReLU features, min-norm least squares", fontsize=9)
    band(axes[1], p, rf["test_error"], "tab:red", "test error")
    band(axes[1], p, rf["train_error"], "tab:blue", "train error", ls="--")
    axes[1].set_ylabel("0–1 error")
    axes[1].legend(fontsize=7)
    for a in axes[:2]:
        a.set_xscale("log")
        a.set_xlabel("number of random features p")
        a.axvline(n_train, color="k", lw=0.8, alpha=0.6)
        a.text(n_train * 1.05, a.get_ylim()[1] * 0.8 if a is axes[1] else 1.0, f"p = n = {n_train}", fontsize=7)
    w = np.asarray(widths, float)
    for c, (lab, vals) in zip(("tab:blue", "tab:red", "tab:purple", "tab:orange"), mlp.items()):
        band(axes[2], w, vals["test_error"], c, f"test, {lab}", marker="o")
        band(axes[2], w, vals["train_error"], c, f"train, {lab}", ls="--")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xlabel("MLP width (hidden units)")
    axes[2].set_ylabel("0–1 error")
    axes[2].set_title("MLP width sweep", fontsize=9)
    axes[2].legend(fontsize=7)
    for a in axes:
        a.grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def optimizer_scatter(optimizer, learning_rate, test_accuracy, measures: dict, diverged, title: str = ""):
    """One panel per measure (e.g. λmax, Hessian trace, normalized margin) against test accuracy,
    one point per run, colour = optimizer, marker size growing with the learning rate (rank
    within the optimizer's grid). Diverged runs are left out."""
    plt = _plt()
    opt = np.asarray(optimizer, dtype=object)
    lr = np.asarray(learning_rate, float)
    ok = ~np.asarray(diverged, bool)
    names = list(dict.fromkeys(opt.tolist()))
    fig, axes = plt.subplots(1, len(measures), figsize=(4.6 * len(measures), 3.6), squeeze=False)
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")
    for ax, (mname, (values, logx)) in zip(axes[0], measures.items()):
        v = _finite(values)
        for c, name in zip(colors, names):
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
