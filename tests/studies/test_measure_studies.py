"""The measures studies (issue: measures): the Hessian spectrum and the loss landscape.

Their numerical building blocks are tested against dense references in tests/measures; here the
studies' own pieces (outlier counting, captured fractions) are checked against direct
computations, and tiny runs check the wiring: the trajectory the engine records is the one it
trained, the spectrum at a snapshot is that of the recorded parameters, and the landscape's
centre is the engine's final training loss."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from dl_course import cli
from dl_course.studies import hessian_spectrum, loss_landscape
from dl_course.train import ConfigError, supervised_task, sweep
from dl_course.train.build import load_data, make_model


def test_count_outliers_and_gap_on_known_lists():
    bulk = np.linspace(0.5, 0.1, 10)
    outliers = np.array([40.0, 30.0, 25.0, 20.0])
    lam = np.concatenate([outliers, bulk])
    assert hessian_spectrum.count_outliers(lam) == 4
    gap, rel = hessian_spectrum.outlier_gap(lam, 4)
    assert gap == pytest.approx(20.0 / 0.5)
    bulk_ratios = bulk[:-1] / bulk[1:]
    assert rel == pytest.approx(gap / np.median(bulk_ratios))
    # Negative values (saddle directions) are ignored by the count; too short a list gives nan.
    assert hessian_spectrum.count_outliers(np.array([3.0, 1.0, -0.5])) == 1
    assert np.isnan(hessian_spectrum.outlier_gap(lam[:4], 4)[0])


def test_captured_fraction_matches_a_direct_projection():
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(2, 50))
    inside = dirs.T @ np.array([1.5, -2.0])
    assert float(loss_landscape.captured_fraction(jnp.asarray(inside), jnp.asarray(dirs))) == pytest.approx(1.0, abs=1e-5)
    delta = rng.normal(size=50)
    q, _ = np.linalg.qr(dirs.T)
    expected = np.sum((q.T @ delta) ** 2) / np.sum(delta**2)
    got = float(loss_landscape.captured_fraction(jnp.asarray(delta), jnp.asarray(dirs)))
    assert got == pytest.approx(expected, rel=1e-4)  # float32 least squares on a 50 x 2 system


TINY_SPECTRUM = ["--config.dataset_options.num_train=300", "--config.model_options.width=16",
                 "--config.steps=40", "--config.eval_every=20", "--config.batch_size=50", "--config.seeds=[0]",
                 "--config.snapshot_steps=[0,40]", "--config.measure.examples=100", "--config.measure.top_k=12",
                 "--config.measure.lanczos_iters=40", "--config.measure.trace_samples=8",
                 "--config.measure.slq_probes=2", "--config.measure.slq_iters=30", "--config.measure.density_points=256"]


def test_hessian_spectrum_smoke_and_spectrum_of_the_recorded_snapshot(tmp_path):
    out = cli.run_study("hessian_spectrum", TINY_SPECTRUM, workdir=str(tmp_path / "hs"))
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "spectrum.png").exists() and (out / "metrics.npz").exists()
    rows = summary["runs"]
    assert [r["step"] for r in rows] == [0, 40]
    for key in ("seed", "learning_rate", "diverged", "lambda_max", "hessian_trace", "num_outliers_hessian",
                "top_eigenvalues", "ggn_top_eigenvalues"):
        assert key in rows[0]
    assert summary["headline"]["num_classes"] == 10
    # The final snapshot's spectrum is that of the engine's final parameters: recompute the top
    # eigenvalues from a dense Hessian (938 parameters) of a fresh run of the same config.
    config = cli.apply_overrides(cli.load_study("hessian_spectrum").get_config(), TINY_SPECTRUM)
    data = load_data(config)
    task = supervised_task(make_model(config, data), config.loss, data.num_classes)
    metrics = np.load(out / "metrics.npz")
    # Rebuild the final parameters from a fresh identical sweep (deterministic engine).
    res = sweep(config, data=data)
    flat, unravel = ravel_pytree(jax.tree.map(lambda x: x[0], res.params))
    batch = {"x": data.x_train[:100], "y": data.y_train[:100]}
    hess = jax.hessian(lambda f: task.loss(unravel(f), {}, batch, jax.random.PRNGKey(0), False)[0])(flat)
    top = np.linalg.eigvalsh(np.asarray(hess, np.float64))[::-1][:3]
    got = metrics["hessian_top"][0, -1, :3]
    residual = metrics["hessian_top_residual"][0, -1, :3]
    # Ritz values are within their residual of an eigenvalue; float32 Hessians add ~1e-5 relative.
    np.testing.assert_allclose(got, top, atol=float(residual.max()) + 1e-4 * top[0], rtol=0)


def test_hessian_spectrum_rejects_a_loss_without_gauss_newton_form(tmp_path):
    with pytest.raises(ConfigError, match="valid: cross_entropy, mse"):
        cli.run_study("hessian_spectrum", TINY_SPECTRUM + ["--config.loss=hinge"], workdir=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_loss_landscape_smoke_centre_is_the_final_training_loss(tmp_path):
    out = cli.run_study("loss_landscape", [
        "--config.dataset_options.num_train=300", "--config.model_options.width=16", "--config.steps=60",
        "--config.eval_every=20", "--config.batch_size=50", "--config.num_records=7",
        "--config.measure.examples=300", "--config.measure.points=5"], workdir=str(tmp_path / "ll"))
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "landscape.png").exists()
    metrics = np.load(out / "metrics.npz")
    assert metrics["random_loss"].shape == (2, 5, 5) and metrics["pca_trajectory"].shape == (2, 7, 2)
    for row in summary["runs"]:
        # Same examples (all 300), same eval mode: the grid's centre is the engine's final loss.
        assert row["centre_loss"] == pytest.approx(row["final_train_loss"], rel=1e-5)
        assert row["captured_pca"] > 0.9 and row["captured_random"] < 0.05
        assert row["captured_pca"] <= 1 + 1e-5
    # The PCA trajectory ends at the origin (the final point) and its first point is θ_0's projection.
    np.testing.assert_allclose(metrics["pca_trajectory"][:, -1], 0.0, atol=1e-4)
