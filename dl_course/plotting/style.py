"""The helpers every figure module shares: pyplot on demand, colour ramps, NaN-safe values and
mean ± std bands. Figures are returned, never saved here: the results layer writes them
atomically (``RunDir.figure`` / ``dl_course.results.save_figure``)."""

from __future__ import annotations

import numpy as np


def pyplot():
    """``matplotlib.pyplot``, imported on first use (a non-interactive backend without a display)."""
    import matplotlib.pyplot as plt

    return plt


def colors(n: int, cmap: str = "viridis") -> list:
    """``n`` colours spread over ``cmap`` (its top 10% left out, too light on white)."""
    plt = pyplot()
    return [plt.get_cmap(cmap)(v) for v in np.linspace(0.0, 0.9, max(n, 1))]


def finite(v) -> np.ndarray:
    """``v`` as floats with non-finite entries (diverged runs) replaced by NaN (not plotted)."""
    v = np.asarray(v, float)
    return np.where(np.isfinite(v), v, np.nan)


def band(ax, x, values, label, **kw):
    """Mean line and ±1 std band of ``values[run, point]`` over runs; returns the line."""
    v = np.asarray(values, float)
    m, s = np.nanmean(v, 0), np.nanstd(v, 0)
    (line,) = ax.plot(x, m, label=label, **kw)
    ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.2, lw=0)
    return line


def finish(fig, title: str = "", *, ax=None, fontsize: int = 9):
    """``title`` as the figure's suptitle (or ``ax``'s title), a tight layout; returns ``fig``."""
    if title:
        (ax.set_title if ax is not None else fig.suptitle)(title, fontsize=fontsize)
    fig.tight_layout()
    return fig

