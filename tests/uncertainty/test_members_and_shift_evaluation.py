"""The member / shift-evaluation pieces the uncertainty studies are built from: the SWAG schedule,
per-member metrics against numpy, shift segments cut and re-assembled, the metrics of every
segment against calibration's functions on that segment alone, and the OOD benchmark split."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from dl_course import data as data_lib
from dl_course.data.shifted_sets import ShiftedSets
from dl_course.train.config import ConfigError
from dl_course.uncertainty import calibration, members, shift_evaluation
from dl_course.uncertainty.ood_benchmark import ood_benchmark
from dl_course.uncertainty.predictive import Predictive


def test_swag_schedule_counts_snapshots_per_epoch():
    # 200 examples / batch 10 = 20 steps per epoch; from step 50 every 20 steps: 50, 70, 90 -> 3.
    assert members.swag_schedule(100, 10, 200, start_fraction=0.5, num_deviations=5) == {
        "start_step": 50, "collect_every": 20, "num_snapshots": 3, "num_deviations": 5, "steps_per_epoch": 20}
    assert members.swag_schedule(100, 0, 200, start_fraction=0.5, collect_every=7)["num_snapshots"] == 8
    with pytest.raises(ConfigError, match="need >= 2"):
        members.swag_schedule(100, 10, 200, start_fraction=0.9)
    with pytest.raises(ConfigError, match="unknown methods"):
        members.check_methods(["sgd", "hamiltonian_mc"])


def test_member_metrics_match_numpy_per_member():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 40, 5)).astype(np.float32) * 3
    y = rng.integers(0, 5, 40)
    got = members.member_metrics(jnp.asarray(logits), jnp.asarray(y))
    for i in range(3):
        p = np.exp(logits[i].astype(np.float64))
        p /= p.sum(-1, keepdims=True)
        # float32 log-softmax vs float64 numpy: ~1e-6 relative.
        assert float(got["nll"][i]) == pytest.approx(-np.mean(np.log(p[np.arange(40), y])), rel=1e-5)
        assert float(got["accuracy"][i]) == pytest.approx(np.mean(p.argmax(-1) == y))
        assert float(got["brier"][i]) == pytest.approx(np.mean(((p - np.eye(5)[y]) ** 2).sum(-1)), rel=1e-5)
    acc = members.predictive_accuracy(jnp.asarray(logits)[:, None], jnp.asarray(y))
    np.testing.assert_allclose(acc, got["accuracy"])


def _sets(n=30, levels=3, corruptions=("a", "b"), seed=0):
    rng = np.random.default_rng(seed)
    clean = rng.normal(size=(n, 4)).astype(np.float32)
    x = {c: np.stack([clean] + [clean + (k + 1) * rng.normal(size=clean.shape).astype(np.float32)
                                for k in range(levels)]) for c in corruptions}
    return ShiftedSets(x=x, y=rng.integers(0, 3, n).astype(np.int32), intensities={c: [] for c in corruptions})


def test_stacked_segments_are_cut_back_by_corruption():
    sets = _sets()
    stacked = shift_evaluation.stack_shifted_inputs(sets)
    assert stacked.shape == ((1 + 2 * 3) * 30, 4)
    # Segment g of the stack, as a per-segment value, lands at (corruption, level).
    seg = stacked.reshape(7, 30, 4)[:, 0, 0][None]
    back = shift_evaluation.by_corruption(seg, sets)
    for c in ("a", "b"):
        np.testing.assert_array_equal(back[c][0], sets.x[c][:, 0, 0])


def test_shift_metrics_equal_calibration_on_each_segment_alone():
    sets = _sets()
    rng = np.random.default_rng(1)
    w = rng.normal(size=(2, 4, 3)).astype(np.float32)       # 2 members of a linear "model", S = 2 samples
    x = shift_evaluation.stack_shifted_inputs(sets)
    logits = np.stack([np.stack([x @ w[m], x @ w[m] * 0.5]) for m in range(2)])   # [M, S, N, K]
    metrics, _, probs = shift_evaluation.shift_metrics({"m": Predictive(jnp.asarray(logits))}, sets)
    assert metrics["m"]["nll"].shape == (2, 7) and probs["m"].shape == (2, 30, 3)
    for member in range(2):
        for g in range(7):
            lp = Predictive(jnp.asarray(logits[member][:, g * 30:(g + 1) * 30])).log_probs
            y = jnp.asarray(sets.y)
            assert metrics["m"]["nll"][member, g] == pytest.approx(float(calibration.nll(lp, y)), rel=1e-6)
            assert metrics["m"]["ece"][member, g] == pytest.approx(
                float(calibration.expected_calibration_error(jnp.exp(lp), y)), abs=1e-6)
    means = shift_evaluation.level_means(metrics, sets)["m"]["nll"]
    assert means[0] == pytest.approx(metrics["m"]["nll"][:, 0].mean(), rel=1e-6) and len(means) == 4


def test_ood_benchmark_holds_out_classes_and_matches_noise_to_the_training_inputs():
    data = data_lib.load("digits")
    in_data, sets = ood_benchmark(data, [7, 8, 9], ["gaussian", "uniform"], seed=0)
    assert in_data.num_classes == 7 and set(np.unique(in_data.y_train)) == set(range(7))
    assert len(sets["held_out_classes"]) == int(np.isin(data.y_test, [7, 8, 9]).sum())
    for k in ("gaussian_noise", "uniform_noise"):
        assert sets[k].shape == (in_data.n_test,) + in_data.input_shape
    # Gaussian noise has the training inputs' per-feature mean (n_test draws: within 4 standard errors).
    mean, std = in_data.x_train.mean(0), in_data.x_train.std(0)
    err = np.abs(sets["gaussian_noise"].mean(0) - mean)
    assert np.all(err <= 4 * std / np.sqrt(in_data.n_test) + 1e-6)
    with pytest.raises(ConfigError, match="no OOD set"):
        ood_benchmark(data)


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
