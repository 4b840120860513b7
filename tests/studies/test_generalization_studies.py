"""Module 2 generalization studies: the random-features estimator against numpy's least squares,
the label randomization the random-label study relies on, and tiny smoke runs of the four
launchers (every code path, the summary's required keys)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course import cli
from dl_course.studies import random_features as rf
from dl_course.studies import random_labels
from dl_course.train import randomize_labels_in_graph


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _problem(n=24, d=10, m=9, k=3, num_features=60, seed=0):
    rng = np.random.default_rng(seed)
    x, xt = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    labels = np.arange(n) % k
    feats = rf.draw_features(jax.random.PRNGKey(seed), d, num_features, jnp.float64)
    return x, xt, labels, np.eye(k)[labels], feats


@pytest.mark.parametrize("p", [7, 24, 60])  # under-, exactly and over-parameterized (n = 24)
def test_min_norm_least_squares_matches_numpy_lstsq(x64, p):
    x, _, _, y, feats = _problem()
    phi = np.asarray(rf.relu_features(feats, x, p))
    expected, *_ = np.linalg.lstsq(phi, y, rcond=None)
    got = np.asarray(rf.min_norm_least_squares(jnp.asarray(phi), jnp.asarray(y)))
    # Both are V diag(1/s) U^T Y over the same singular values; float64 rounding times cond(Φ).
    tol = 1e-12 * np.linalg.cond(phi) * np.abs(expected).max()
    np.testing.assert_allclose(got, expected, atol=tol, rtol=0)


def test_feature_count_sweep_matches_pseudo_inverse_at_every_count(x64):
    """The dual (kernel) form accumulated over blocks equals Φ_p⁺ Y computed directly, for counts
    below, at and above n, with a block size that does not divide the counts; vmapped over two
    feature draws it equals the per-draw results."""
    x, xt, _, y, _ = _problem()
    counts = [3, 10, 23, 24, 25, 40, 60]
    feats = jax.vmap(lambda k: rf.draw_features(k, x.shape[1], 60, jnp.float64))(
        jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)]))
    fits = jax.jit(jax.vmap(lambda f: rf.feature_count_sweep(rf.ReluFeatures(*f), x, y, xt, counts, block=7)))(feats)
    for s in range(2):
        one = rf.ReluFeatures(feats.w[s], feats.b[s])
        for i, p in enumerate(counts):
            phi = np.asarray(rf.relu_features(one, x, p))
            beta = np.linalg.pinv(phi) @ y
            sv = np.linalg.svd(phi, compute_uv=False)
            cond = sv[0] / sv[sv > 1e-6 * sv[0]].min()  # over the singular values both keep
            # The kernel form squares the condition number: error ~ n·ε·cond(Φ)² relative.
            tol = max(1e-10, 1e-14 * cond**2)
            np.testing.assert_allclose(fits.test_pred[s, i], np.asarray(rf.relu_features(one, xt, p)) @ beta,
                                       atol=tol * np.abs(beta).max() * 10)
            np.testing.assert_allclose(fits.train_pred[s, i], phi @ beta, atol=tol * 10)
            np.testing.assert_allclose(fits.coef_norm[s, i], np.linalg.norm(beta), rtol=tol * 10)
            assert int(fits.rank[s, i]) == np.linalg.matrix_rank(phi)
    # Interpolation from p = n on: zero training residual.
    assert np.abs(fits.train_pred[:, counts.index(25)] - y).max() < 1e-6


def test_feature_count_sweep_rejects_bad_counts(x64):
    x, xt, _, y, feats = _problem()
    with pytest.raises(ValueError, match="strictly increasing"):
        rf.feature_count_sweep(feats, x, y, xt, [10, 5])
    with pytest.raises(ValueError, match="exceeds"):
        rf.feature_count_sweep(feats, x, y, xt, [10, 61])


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.4, 1.0])
def test_label_randomization_keeps_fraction_and_class_range(fraction):
    """The engine's in-graph transform the random-label study sweeps over: exactly round(p n)
    labels are redrawn (visible with very many classes, where a redraw almost never repeats the
    old label), the redrawn set grows with p for one key, and labels stay in [0, K)."""
    n, key = 1000, jax.random.PRNGKey(3)
    y = np.arange(n, dtype=np.int32) % 10
    many = np.asarray(randomize_labels_in_graph(key, jnp.asarray(y), fraction, 10**6))
    assert np.sum(many != y) == round(fraction * n)
    ten = np.asarray(randomize_labels_in_graph(key, jnp.asarray(y), fraction, 10))
    assert ten.min() >= 0 and ten.max() < 10
    # With 10 classes a redrawn label is wrong with probability 0.9: binomial, 5 sigma.
    changed, chosen = np.sum(ten != y), round(fraction * n)
    assert abs(changed - 0.9 * chosen) <= 5 * np.sqrt(chosen * 0.09) + 1e-9
    smaller = np.asarray(randomize_labels_in_graph(key, jnp.asarray(y), fraction / 2, 10**6))
    assert np.all((smaller != y) <= (many != y))


def test_steps_to_fit_and_corrupted_fraction():
    steps = np.array([0, 10, 20, 30])
    acc = np.array([[0.1, 0.9, 1.0, 1.0], [0.1, 0.5, 0.99, 0.999], [0.1, 1.0, 0.98, 1.0]], np.float32)
    np.testing.assert_array_equal(random_labels.steps_to_fit(steps, acc), [20.0, np.nan, 10.0])
    clean = np.array([0, 1, 2, 3])
    np.testing.assert_allclose(random_labels.corrupted_fraction(np.array([[0, 1, 2, 3], [1, 1, 2, 0]]), clean), [0, 0.5])


TINY = ["--config.dataset_options.num_train=64", "--config.steps=4", "--config.eval_every=2", "--config.seeds=[0]"]


def _summary(path):
    with open(path / "summary.json") as f:
        s = json.load(f)
    assert {"runs", "headline", "conventions"} <= set(s)
    for name in ("config.json", "metrics.npz"):
        assert (path / name).exists()
    return s


def test_batch_size_sharpness_smoke(tmp_path):
    out = cli.run_study("batch_size_sharpness", TINY + [
        "--config.model_options.width=8", "--config.model_options.depth=1", "--config.batch_sizes=[16, 0]",
        "--config.epochs=1", "--config.min_steps=4", "--config.learning_rates=[0.1]", "--config.measure.examples=32",
        "--config.measure.lanczos_iters=3", "--config.measure.trace_samples=2", "--config.landscape.points=3"],
        workdir=str(tmp_path / "x"))
    s = _summary(out)
    assert len(s["runs"]) == 2
    for r in s["runs"]:
        assert {"batch_size", "learning_rate", "seed", "lambda_max", "hessian_trace", "test_accuracy", "diverged"} <= set(r)
        assert r["lambda_max"] is not None and r["lambda_max"] > 0
    assert [r["batch_size"] for r in s["runs"]] == [16, 64]
    assert (out / "sharpness_vs_batch_size.png").exists() and (out / "landscape.png").exists()


def test_random_labels_smoke(tmp_path):
    out = cli.run_study("random_labels", TINY + [
        "--config.models={'mlp': {'width': 16, 'depth': 1}}", "--config.random_label_fractions=[0.0, 1.0]",
        "--config.variant_seeds=[0]", "--config.batch_size=16"], workdir=str(tmp_path / "x"))
    s = _summary(out)
    orig = [r for r in s["runs"] if r["inputs"] == "original"]
    assert [r["random_label_fraction"] for r in orig] == [0.0, 1.0]
    for r in s["runs"]:
        assert {"random_label_fraction", "final_train_accuracy", "final_test_accuracy", "steps_to_fit"} <= set(r)
    assert orig[0]["corrupted_label_fraction"] == 0.0 and orig[1]["corrupted_label_fraction"] > 0.5
    assert {r["inputs"] for r in s["runs"]} == {"original", "shuffled", "random"}


def test_double_descent_smoke(tmp_path):
    out = cli.run_study("double_descent", TINY + [
        "--config.rf.feature_ratios=[0.5, 1.0, 2.0]", "--config.rf.seeds=[0]", "--config.rf.block=16",
        "--config.widths=[4]", "--config.label_noise=[0.0, 0.2]"], workdir=str(tmp_path / "x"))
    s = _summary(out)
    h = s["headline"]
    assert h["n_train"] == 64 and h["peak_num_features"] in (32, 64, 128)
    kinds = {r["kind"] for r in s["runs"]}
    assert kinds == {"random_features", "mlp"}
    for p in h["points"]:
        assert ("num_features" in p or "width" in p) and {"train_error", "test_error"} <= set(p)
    rf_rows = [r for r in s["runs"] if r["kind"] == "random_features"]
    assert [r["train_error"] for r in rf_rows][1:] == [0.0, 0.0]  # interpolation from p = n on


def test_optimizer_comparison_smoke(tmp_path):
    out = cli.run_study("optimizer_comparison", TINY + [
        "--config.model_options.width=8", "--config.model_options.depth=1",
        "--config.optimizers={'sam': {'rule': 'sam', 'options': {'base': 'sgd', 'rho': 0.05}, 'batch_size': 16, "
        "'learning_rates': [0.1]}}", "--config.measure.examples=32", "--config.measure.lanczos_iters=3",
        "--config.measure.trace_samples=2"], workdir=str(tmp_path / "x"))
    s = _summary(out)
    (r,) = s["runs"]
    assert {"optimizer", "learning_rate", "seed", "lambda_max", "normalized_margin", "test_accuracy", "diverged"} <= set(r)
    assert r["optimizer"] == "sam" and r["lambda_max"] is not None
