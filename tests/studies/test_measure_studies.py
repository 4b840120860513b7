"""The measures studies (issue: measures): the Hessian spectrum and the loss landscape.

Their numerical building blocks (outlier counting, H and G spectra, captured fractions) are tested
against dense references in tests/measures; here tiny runs check the wiring and the effects: the
spectrum at a snapshot is that of the recorded parameters, at initialization the Hessian shows
C − 1 outliers from its Gauss–Newton part, the landscape's centre is the engine's final training
loss and the path lies in its PCA plane, not in a random one, and a study-only key does not
recompile the sweep."""

import json

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from dl_course import cli
from dl_course.studies import loss_landscape
from dl_course.train import ConfigError, supervised_task, sweep
from dl_course.train.build import load_data, make_model
from tests.compile_counter import count_compilations

TINY_SPECTRUM = ["--config.train.dataset_options.num_train=300", "--config.train.model_options.width=16",
                 "--config.train.steps=40", "--config.train.eval_every=20", "--config.train.batch_size=50",
                 "--config.train.seeds=[0]", "--config.snapshot_steps=[0,40]", "--config.measure.examples=100",
                 "--config.measure.top_k=12",
                 "--config.measure.lanczos_iters=40", "--config.measure.trace_samples=8",
                 "--config.measure.slq_probes=2", "--config.measure.slq_iters=30",
                 "--config.measure.density_points=256"]


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
    config = cli.study_config("hessian_spectrum", TINY_SPECTRUM)[1].train
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
        cli.run_study("hessian_spectrum", TINY_SPECTRUM + ["--config.train.loss=hinge"], workdir=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


TINY_LANDSCAPE = ["--config.train.dataset_options.num_train=300", "--config.train.model_options.width=16",
                  "--config.train.steps=60", "--config.train.eval_every=20", "--config.train.batch_size=50",
                  "--config.num_records=7", "--config.measure.examples=300"]


def test_loss_landscape_smoke_centre_is_the_final_training_loss(tmp_path):
    out = cli.run_study("loss_landscape", TINY_LANDSCAPE + ["--config.measure.points=5"], workdir=str(tmp_path / "ll"))
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


def test_changing_a_study_only_key_does_not_recompile_the_sweep(tmp_path, monkeypatch):
    """The engine's compile cache is keyed by ``config.train`` only: a second loss_landscape run
    with other landscape points (a study key) trains without a single compilation. The count
    covers the sweep call only (the landscape program depends on the points and compiles again);
    the sweep cache starts empty, so the first run's compilations show the counter works."""
    import collections
    import importlib

    sweep_module = importlib.import_module("dl_course.train.sweep")  # the module, not the function
    monkeypatch.setattr(sweep_module, "_CACHE", collections.OrderedDict())
    counts = []

    def counted_sweep(*args, **kwargs):
        with count_compilations() as n:
            res = sweep(*args, **kwargs)
        counts.append(n[0])
        return res

    monkeypatch.setattr(loss_landscape, "sweep", counted_sweep)
    for i, points in enumerate([3, 5]):
        cli.run_study("loss_landscape", TINY_LANDSCAPE + [f"--config.measure.points={points}"],
                      workdir=str(tmp_path / f"run{i}"))
    assert counts[0] > 0  # init, eval and chunk programs of the sweep
    assert counts[1] == 0
