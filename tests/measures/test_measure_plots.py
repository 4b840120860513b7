"""Figures of the measures (dl_course/plotting/{spectra,landscape,scatter}.py): they render, draw
what they claim (threshold lines at 2/η, 38/η), and compute correct rank correlations.
(Kept beside the measures tests because tests/plotting belongs to the plotting area.)"""

import numpy as np
import pytest
from scipy import stats

from dl_course.plotting import landscape as L
from dl_course.plotting import scatter as S
from dl_course.plotting import spectra as P


def _render(fig, path):
    fig.savefig(path, dpi=40)
    assert path.stat().st_size > 1000


def test_spectra_figures(tmp_path):
    grid = np.linspace(-1, 5, 200)
    dens = np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi)
    fig = P.plot_spectral_density(grid, dens, label="init")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert np.min(ax.lines[0].get_ydata()) >= 1e-10  # clipped at the floor
    _render(fig, tmp_path / "density.png")

    steps = np.arange(0, 1000, 100)
    lam = np.stack([np.linspace(1, 19, 10), np.linspace(1, 39, 10)])
    fig = P.plot_sharpness_over_training(steps, lam, [0.1, 0.05])
    levels = sorted(line.get_ydata()[0] for line in fig.axes[0].lines if line.get_linestyle() == "--")
    np.testing.assert_allclose(levels, [20.0, 40.0])  # 2/η for η = 0.1, 0.05
    _render(fig, tmp_path / "sharpness.png")
    fig = P.plot_sharpness_over_training(steps, lam[:1], [0.01], threshold="adam")
    dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    np.testing.assert_allclose(dashed[0].get_ydata()[0], 3800.0)  # 38/η at β1 = 0.9
    with pytest.raises(ValueError):
        P.plot_sharpness_over_training(steps, lam, [0.1, 0.05], threshold="sgd")


def test_landscape_figures(tmp_path):
    a, b = np.linspace(-1, 1, 11), np.linspace(-2, 2, 9)
    values = (a[:, None] ** 2 + 0.5 * b[None, :] ** 2) + 0.1
    traj = np.stack([np.linspace(0.8, 0, 5), np.linspace(-1.5, 0, 5)], 1)
    fig = L.plot_landscape(a, b, values, trajectory=traj, log=True, title="quadratic")
    assert len(fig.axes) >= 3
    _render(fig, tmp_path / "landscape.png")
    fig = L.plot_landscape_1d(a, {"x": values[:, 4], "y": values[:, 2]}, logy=True)
    assert len(fig.axes[0].lines) == 2
    _render(fig, tmp_path / "curves.png")
    with pytest.raises(ValueError, match="shape"):
        L.plot_landscape_contour(a, b, values.T)


def test_scatter_and_rank_correlations(tmp_path):
    rng = np.random.default_rng(0)
    sharp = rng.uniform(1, 100, 16)
    acc = 0.9 - 0.001 * sharp + 0.01 * rng.standard_normal(16)
    sharp[3] = np.nan  # a diverged run is dropped
    corr = S.rank_correlations(sharp, acc)
    ok = np.isfinite(sharp)
    assert corr["num_runs"] == 15
    np.testing.assert_allclose(corr["kendall_tau"], stats.kendalltau(sharp[ok], acc[ok]).statistic)
    assert corr["kendall_tau"] < -0.5
    fig = S.plot_measures_vs_accuracy(
        {"lambda_max": sharp, "margin": -sharp}, acc, color_by=2.0 ** np.arange(16),
        color_label="batch size", logx=["lambda_max"], log_color=True,
    )
    assert fig.axes[0].get_xscale() == "log"
    assert "Kendall" in fig.axes[0].get_title()
    _render(fig, tmp_path / "scatter.png")
