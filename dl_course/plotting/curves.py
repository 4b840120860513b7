"""Learning curves and hyperparameter heatmaps of a sweep."""

from __future__ import annotations

import numpy as np


def learning_curves(steps, values, labels, groups, title: str = "", ylabel: str = "train loss", logy: bool = True):
    """One panel per group (e.g. learning rate), one line per run (e.g. seed).

    Args:
      steps: ``[eval_point]``; values: ``[run, eval_point]``; labels: line label per run;
      groups: panel key per run (panels in first-seen order).
    """
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys(groups))
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), sharey=True, squeeze=False)
    for ax, key in zip(axes[0], keys):
        for i in np.flatnonzero(np.asarray(groups, dtype=object) == key):
            v = np.asarray(values[i], float)
            ax.plot(steps, np.where(np.isfinite(v), v, np.nan), lw=1.2, label=str(labels[i]))
        ax.set_title(str(key), fontsize=9)
        ax.set_xlabel("step")
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=7, title="seed", title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def heatmap(matrix, row_labels, col_labels, title: str = "", fmt: str = "{:.3f}", cbar_label: str = "",
            xlabel: str = "seed", ylabel: str = "learning rate", mask=None):
    """Annotated heatmap of ``matrix[row, col]``; masked cells (e.g. diverged) are hatched."""
    import matplotlib.pyplot as plt

    m = np.asarray(matrix, float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * m.shape[1], 0.8 + 0.55 * m.shape[0]))
    im = ax.imshow(np.ma.masked_invalid(m), cmap="viridis", aspect="auto")
    for (r, c), v in np.ndenumerate(m):
        bad = mask is not None and mask[r, c]
        ax.text(c, r, "div." if bad else fmt.format(v), ha="center", va="center", fontsize=8,
                color="white" if not bad else "red")
    ax.set_xticks(range(m.shape[1]), [str(x) for x in col_labels])
    ax.set_yticks(range(m.shape[0]), [str(x) for x in row_labels])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=ax, label=cbar_label)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
