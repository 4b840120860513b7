"""Calibration and OOD figures are returned as Figures (written by the results layer) and carry
the OOD-positive convention."""

import numpy as np
from matplotlib.figure import Figure

from dl_course import results
from dl_course.plotting import calibration as cplots
from dl_course.plotting import ood as oplots
from dl_course.uncertainty.calibration import ReliabilityDiagram


def test_figures_are_returned_and_written(tmp_path):
    rng = np.random.default_rng(0)
    edges = np.linspace(0, 1, 16)
    count = np.r_[np.zeros(5, int), rng.integers(1, 30, 10)]
    conf = np.where(count > 0, (edges[:-1] + edges[1:]) / 2, np.nan)
    diagram = ReliabilityDiagram(edges[:-1], edges[1:], conf, conf * 0.8, count)
    figs = {
        "rel.png": cplots.reliability_figure({"SGD": diagram, "SWAG": diagram}, eces={"SGD": 0.1, "SWAG": 0.05}),
        "shift.png": cplots.shift_figure({"noise": {"SGD": {"ece": rng.random((3, 6))},
                                                    "SWAG": {"ece": rng.random(6)}}},
                                         ["ece"]),
        "ood.png": oplots.ood_figure({"msp": rng.normal(0, 1, 100)}, {"msp": rng.normal(1, 1, 80)},
                                     title="MNIST-1D vs noise"),
    }
    assert "positive class: OOD" in figs["ood.png"].get_suptitle()
    for name, fig in figs.items():
        assert isinstance(fig, Figure)
        results.save_figure(tmp_path / name, fig)
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_roc_panel_states_positive_class():
    fig = Figure()
    ax = fig.subplots()
    oplots.plot_roc(ax, {"msp": (np.zeros(10), np.ones(10))})
    assert "positive class: OOD" in ax.get_title()
    assert "AUROC 1.000" in ax.get_legend().get_texts()[0].get_text()
