"""hessian_spectrum with the exact target stop (issue 28, part 5): the last snapshot is each run's
parameters at train loss 0.01 (the engine's exact stop), summarised over the seeds with intervals.

A tiny run (200 MNIST-1D examples, a 40-16-16-10 MLP, 2 seeds) trained to train CE 0.01 checks
that the at-target snapshot IS the stopped network (its measured loss on the same 200 examples lies
in the stop's band [0.98, 1] x 0.01), that a fixed snapshot after the stop is left out, that the
headline's counts, intervals and verdict agree with the rows, and one effect of near-zero loss:
the non-Gauss-Newton part E = H - G is weighted by the residuals p - y, which vanish, so the
negative curvature |lambda_min| / lambda_max that E carries at initialization (~0.3 here) is gone
(< 0.01) at the target."""

import json

import numpy as np
import pytest

from dl_course import cli
from dl_course.measures.curvature import outliers

TARGET = 0.01
TINY = ["--config.train.dataset_options.num_train=200", "--config.train.model_options.width=16",
        "--config.train.steps=3000", "--config.train.eval_every=50", "--config.train.batch_size=50",
        "--config.train.learning_rates=[0.2]", "--config.train.seeds=[0,1]",
        f"--config.train.target_train_loss={TARGET}", "--config.snapshot_steps=[0,50,3000]",
        "--config.measure.examples=200", "--config.measure.top_k=12", "--config.measure.lanczos_iters=24",
        "--config.measure.trace_samples=8", "--config.measure.slq_probes=2", "--config.measure.slq_iters=12",
        "--config.measure.density_points=128"]


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = cli.run_study("hessian_spectrum", TINY, workdir=str(tmp_path_factory.mktemp("hs") / "run"))
    return json.loads((out / "summary.json").read_text())


def test_the_last_snapshot_is_the_network_stopped_at_the_target(summary):
    rows = summary["runs"]
    for seed in (0, 1):
        mine = [r for r in rows if r["seed"] == seed]
        last = mine[-1]
        assert last["at_target"] and last["converged"] and not any(r["at_target"] for r in mine[:-1])
        # the fixed snapshot at step 3000 lies after the stop: never recorded, left out
        assert [r["step"] for r in mine[:-1]] == [0, 50] and 50 < last["step"] < 3000
        # measured on the engine's evaluation examples (all 200), in eval mode: the stop's band
        assert last["final_train_loss"] == pytest.approx(last["measure_loss"], rel=1e-4)
        assert 0.98 * TARGET * (1 - 1e-4) <= last["measure_loss"] <= TARGET * (1 + 1e-4)


def test_at_target_headline_agrees_with_its_rows(summary):
    head = summary["headline"]["at_target"]
    rows = [r for r in summary["runs"] if r["at_target"]]
    assert head["num_runs"] == 2 and head["target_train_loss"] == TARGET
    assert head["num_outliers_hessian"] == [outliers.count_outliers(r["top_eigenvalues"]) for r in rows]
    for key in ("num_outliers", "gap", "gap_over_bulk", "ggn_trace_fraction", "top_hessian_vs_ggn_rel_diff"):
        lo, hi = head[f"{key}_ci"]
        assert lo <= head[key] <= hi
    assert head["gap"] == pytest.approx(np.mean([r["gap_after_expected"] for r in rows]))
    e = head["expected_outliers"]
    separated = all(c == e for c in head["num_outliers_hessian"]) and head["gap_over_bulk_ci"][0] > 1
    assert head["outliers_separated"] == separated
    assert head["verdict"].startswith("a separated group" if separated else "no separated group")


def test_near_zero_loss_removes_the_negative_curvature_of_the_residual_term(summary):
    rows = summary["runs"]
    for seed in (0, 1):
        init = next(r for r in rows if r["seed"] == seed and r["step"] == 0)
        last = next(r for r in rows if r["seed"] == seed and r["at_target"])
        assert abs(init["lambda_min"]) / init["lambda_max"] > 0.05
        assert abs(last["lambda_min"]) / last["lambda_max"] < 0.01
