"""Figures of capacity and memorization: fitting random labels (Zhang et al. 2017) and double
descent in the number of features and the width (Belkin et al. 2019; Nakkiran et al. 2019). Every
function takes plain arrays and returns a matplotlib figure; the results layer writes it
(``RunDir.figure``)."""

from __future__ import annotations

import numpy as np

from dl_course.plotting.style import finite, pyplot


def _range_band(ax, x, v, color, label, ls="-", marker=None):
    """Mean over the leading (seed) axis of ``v`` as a line, min–max over seeds as a band."""
    v = np.asarray(v, float)
    ax.plot(x, np.nanmean(v, 0), color=color, ls=ls, marker=marker, ms=3, label=label)
    if v.shape[0] > 1:
        ax.fill_between(x, np.nanmin(v, 0), np.nanmax(v, 0), color=color, alpha=0.15, lw=0)


def random_labels_panels(steps, curves: list[dict], fits: list[dict], title: str = ""):
    """Zhang et al. (2017), Fig. 1: (a) training loss vs step; (b) steps to fit the training set
    vs the fraction of random labels; (c) test accuracy vs the fraction.

    ``curves``: one dict per line with ``loss`` ``[eval]``, ``p`` (label fraction or None),
    ``style`` ("-" / "--"), ``label``, ``color`` (None: coloured by ``p``). ``fits``: one dict per
    series (e.g. per model) with ``p`` ``[k]``, ``steps_to_fit`` ``[k]`` (nan: never),
    ``test_accuracy`` ``[k]``, ``label``, ``marker``, and optional ``extra``: list of
    ``(label, steps_to_fit, test_accuracy)`` for input corruptions drawn as horizontal lines.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    cmap = plt.get_cmap("plasma")
    for cv in curves:
        color = cv.get("color") or cmap(0.85 * float(cv["p"]))
        axes[0].plot(steps, finite(cv["loss"]), color=color, ls=cv.get("style", "-"), lw=1.2, label=cv["label"])
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss (on the labels trained on)")
    axes[0].legend(fontsize=6, ncol=2)
    styles = ("-", "--", ":", "-.")
    for k, f in enumerate(fits):
        p = np.asarray(f["p"], float)
        axes[1].plot(p, finite(f["steps_to_fit"]), marker=f.get("marker", "o"), label=f["label"])
        axes[2].plot(p, finite(f["test_accuracy"]), marker=f.get("marker", "o"), label=f["label"])
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
    plt = pyplot()
    p = np.asarray(num_features, float)
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))

    ax = axes[0]
    _range_band(ax, p, rf["test_mse"], "tab:red", "test squared loss")
    _range_band(ax, p, rf["train_mse"], "tab:blue", "train squared loss", ls="--")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_ylabel("squared loss (mean over examples)")
    ax2 = ax.twinx()
    _range_band(ax2, p, rf["coef_norm"], "tab:grey", "‖β̂‖ (min-norm solution)", ls=":")
    ax2.set_yscale("log")
    ax2.set_ylabel("‖β̂‖_F", color="tab:grey")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7)
    ax.set_title("random ReLU features, min-norm least squares", fontsize=9)
    _range_band(axes[1], p, rf["test_error"], "tab:red", "test error")
    _range_band(axes[1], p, rf["train_error"], "tab:blue", "train error", ls="--")
    axes[1].set_ylabel("0–1 error")
    axes[1].legend(fontsize=7)
    for a in axes[:2]:
        a.set_xscale("log")
        a.set_xlabel("number of random features p")
        a.axvline(n_train, color="k", lw=0.8, alpha=0.6)
        a.text(n_train * 1.05, a.get_ylim()[1] * 0.8 if a is axes[1] else 1.0, f"p = n = {n_train}", fontsize=7)
    w = np.asarray(widths, float)
    for c, (lab, vals) in zip(("tab:blue", "tab:red", "tab:purple", "tab:orange"), mlp.items()):
        _range_band(axes[2], w, vals["test_error"], c, f"test, {lab}", marker="o")
        _range_band(axes[2], w, vals["train_error"], c, f"train, {lab}", ls="--")
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
