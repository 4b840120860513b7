"""Uncertainty studies (issue 8): tiny smoke runs through the launchers' code path
(``dl_course.cli.run_study``) that check the summary schema and recompute the reported numbers from
what the run saved, plus cheap checks of the studies' own pieces (pooled reliability diagrams,
the digits corruptions, the SWAG schedule, bad input)."""

from __future__ import annotations

import json

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dl_course import cli
from dl_course.uncertainty import members as unc
from dl_course.uncertainty import shift_evaluation, shifted_sets
from dl_course.train.config import ConfigError
from dl_course.uncertainty import calibration

TINY_TRAINING = ["--config.train.steps=20", "--config.train.eval_every=20", "--config.train.batch_size=64",
                 "--config.train.model_options.width=8", "--config.train.seeds=[0, 1]", "--config.swag.collect_every=4",
                 "--config.swag.num_samples=3", "--config.mc_dropout.num_samples=3"]


def _summary(path):
    return json.loads((path / "summary.json").read_text())


def test_uncertainty_study_reports_every_method_and_its_saved_probs_reproduce_the_metrics(tmp_path):
    out = cli.run_study("uncertainty", TINY_TRAINING + [
        "--config.train.dataset_options={'num_train': 400}", "--config.shift.max_examples=40",
        "--config.shift.corruptions=['noise']"], workdir=str(tmp_path / "x"))
    summary = _summary(out)
    rows = summary["runs"]
    assert {"method", "seed", "shift_level", "accuracy", "nll", "ece", "brier"} <= set(rows[0])
    assert {r["method"] for r in rows} == set(unc.METHODS)
    assert {r["shift_level"] for r in rows} == set(range(6))
    # Per-seed methods: one row per seed and level; pooled ones: seed null.
    clean = {(r["method"], r["seed"]): r for r in rows if r["shift_level"] == 0}
    assert len(clean) == 6 * 2 + 2 and clean[("ensemble", None)]["members"] == [0, 1]
    with np.load(out / "metrics.npz") as f:
        y = f["y_test"]
        assert y.shape == (40,) and list(f["seeds"]) == [0, 1]
        for m in unc.METHODS:
            p = f[f"probs_{m}"]
            assert p.shape == ((1 if m in unc.POOLED else 2), 40, 10) and p.dtype == np.float32
            np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
            for i in range(p.shape[0]):
                row = clean[(m, None if m in unc.POOLED else [0, 1][i])]
                # Recomputed in float64 numpy from the saved float32 probabilities; the run computed
                # the NLL in log space in float32: agreement to ~1e-6 relative.
                nll = -np.mean(np.log(p[i][np.arange(40), y].astype(np.float64)))
                assert nll == pytest.approx(row["nll"], rel=1e-4)
                assert np.mean(p[i].argmax(-1) == y) == pytest.approx(row["accuracy"])
                conf, hit = p[i].max(-1).astype(np.float64), p[i].argmax(-1) == y
                bins = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)  # (b/15, (b+1)/15]
                ece = sum(abs(hit[bins == b].mean() - conf[bins == b].mean()) * np.mean(bins == b)
                          for b in range(15) if np.any(bins == b))
                assert ece == pytest.approx(row["ece"], abs=1e-5)
        # Temperature scaling divides the SGD logits: same argmax, hence the same predictions.
        np.testing.assert_array_equal(f["probs_sgd"].argmax(-1), f["probs_temp_scaling"].argmax(-1))
    assert summary["conventions"]["nll"].startswith("mean over examples")
    assert {"nll_vs_shift.png", "metrics_vs_shift.png", "reliability.png"} <= {p.name for p in out.iterdir()}


def test_ood_detection_study_rows_and_the_mutual_information_of_a_single_network(tmp_path):
    out = cli.run_study("ood_detection", TINY_TRAINING + [
        "--config.train.dataset=digits", "--config.methods=['sgd', 'multiswag']",
        "--config.scores=['msp', 'mutual_information']", "--config.ood.noise=['uniform']"], workdir=str(tmp_path / "x"))
    rows = _summary(out)["runs"]
    assert {"method", "score", "ood_set", "auroc", "aupr", "fpr95"} <= set(rows[0])
    assert {r["ood_set"] for r in rows} == {"held_out_classes", "uniform_noise"}
    assert len(rows) == (2 + 1) * 2 * 2  # (2 seeds of sgd + 1 pooled) x scores x OOD sets
    assert all(0.0 <= r[k] <= 1.0 for r in rows for k in ("auroc", "aupr", "fpr95"))
    # S = 1: the mutual information is identically 0, a tie everywhere: AUROC exactly 1/2 and
    # FPR@95 = 1; with posterior samples (MultiSWAG) it is not constant.
    single = [r for r in rows if r["method"] == "sgd" and r["score"] == "mutual_information"]
    assert single and all(r["auroc"] == 0.5 and r["fpr95"] == 1.0 for r in single)
    assert any(r["auroc"] != 0.5 for r in rows if r["method"] == "multiswag" and r["score"] == "mutual_information")
    names = {p.name for p in out.iterdir()}
    assert {"auroc.png", "score_histograms_held_out_classes.png", "score_histograms_uniform_noise.png"} <= names


def test_sharpness_vs_calibration_study_rows_and_correlations(tmp_path):
    out = cli.run_study("sharpness_vs_calibration", [
        "--config.train.steps=20", "--config.train.eval_every=20", "--config.train.model_options.width=8",
        "--config.train.seeds=[0, 1]", "--config.train.learning_rates=[0.05, 0.2]", "--config.measure_examples=100", "--config.lanczos_iters=4",
        "--config.trace_probes=3", "--config.ood.noise=[]"], workdir=str(tmp_path / "x"))
    summary = _summary(out)
    rows = summary["runs"]
    assert len(rows) == 4
    assert {"seed", "learning_rate", "diverged", "lambda_max", "hessian_trace", "ece", "nll",
            "auroc_held_out_classes"} <= set(rows[0])
    assert all(r["lambda_max"] > 0 and 0 <= r["ece"] <= 1 for r in rows)
    corr = summary["headline"]["rank_correlations"]
    assert set(corr) == {"lambda_max", "hessian_trace"} and corr["lambda_max"]["ece"]["num_runs"] == 4
    assert (out / "sharpness_vs_calibration.png").exists()


def test_pooled_reliability_equals_the_diagram_of_the_pooled_points():
    """Bin statistics of 3 members x 2 segments combined = the diagram of the 300 points at once."""
    import jax

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 2, 50, 4)) * 2  # [members, segments, n, K]
    probs = jnp.asarray(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), jnp.float32)
    y = jnp.asarray(rng.integers(0, 4, size=50))
    per = jax.jit(jax.vmap(jax.vmap(calibration.reliability_diagram, in_axes=(0, None)), in_axes=(0, None)))(probs, y)
    diagram, ece = shift_evaluation.pooled_reliability(jax.tree_util.tree_map(np.asarray, per), [0, 1])
    pts, yy = probs.reshape(-1, 4), jnp.tile(y, 6)
    ref = calibration.reliability_diagram(pts, yy)
    np.testing.assert_array_equal(diagram.count, ref.count)
    # float32 bin means summed in a different order: ~1e-7 relative.
    np.testing.assert_allclose(diagram.confidence, ref.confidence, rtol=1e-5)
    np.testing.assert_allclose(diagram.accuracy, ref.accuracy, rtol=1e-5)
    assert ece == pytest.approx(float(calibration.expected_calibration_error(pts, yy)), abs=1e-6)


def test_digits_corruptions_keep_level_zero_and_grow():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(5, 8, 8, 1)).astype(np.float32)
    sets = shifted_sets.digits_shifted_test_sets(x, np.arange(5))
    for c, v in sets.x.items():
        assert v.shape == (6, 5, 8, 8, 1)
        np.testing.assert_allclose(v[0], x, atol=1e-6)
        dist = [np.abs(v[lv] - x).mean() for lv in range(6)]
        assert dist[0] < 1e-6 and dist[-1] > dist[1] > 0, (c, dist)
    assert sets.intensities["rotation"][5] == {"degrees": 50.0}


def test_swag_schedule_and_bad_input_raise_config_errors(tmp_path):
    assert unc.swag_schedule(100, 10, 200, start_fraction=0.5, collect_every=0, num_deviations=5) == {"start_step": 50, "collect_every": 20, "num_snapshots": 3,
                                         "num_deviations": 5, "steps_per_epoch": 20}
    with pytest.raises(ConfigError, match="need >= 2"):
        unc.swag_schedule(100, 10, 200, start_fraction=0.9, collect_every=0, num_deviations=5)
    with pytest.raises(ConfigError, match="one learning rate"):
        cli.run_study("uncertainty", TINY_TRAINING + ["--config.train.learning_rates=[0.1, 0.2]",
                                                      "--config.train.dataset=digits"], workdir=str(tmp_path / "a"))
    with pytest.raises(ConfigError, match="unknown mnist1d corruptions"):
        cli.run_study("uncertainty", ["--config.shift.corruptions=['blur']"], workdir=str(tmp_path / "b"))
    with pytest.raises(ConfigError, match="unknown methods"):
        cli.run_study("ood_detection", ["--config.methods=['laplace']"], workdir=str(tmp_path / "c"))
    assert not any(tmp_path.iterdir())
