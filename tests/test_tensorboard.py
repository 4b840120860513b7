"""TensorBoard events of a sweep (``dl_course.tensorboard``), read back with tbparse (TensorBoard's
own event loader) and compared with the metrics arrays: every grid point is one run named by its
grid values, every scalar metric (hook metrics included) has one point per evaluation step,
small vector metrics are written per component and large ones are skipped and reported.

Tolerance: TensorBoard stores scalars as float32, so the values read back equal the metrics
rounded to float32 exactly (``assert_array_equal`` against ``astype(float32)``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.tensorboard import run_name, write_sweep_events
from dl_course.train import SweepResult, default_config, sweep
from dl_course.train.hooks import Hook

tbparse = pytest.importorskip("tbparse")


def read_scalars(logdir):
    """{run directory name: {tag: (steps, values)}} of every scalar event under ``logdir``."""
    frame = tbparse.SummaryReader(str(logdir), pivot=False, extra_columns={"dir_name"}).scalars
    out = {}
    for (run, tag), rows in frame.groupby(["dir_name", "tag"]):
        rows = rows.sort_values("step")
        out.setdefault(run, {})[tag] = (rows["step"].to_numpy(), rows["value"].to_numpy())
    return out


def fake_result(rng, grid, steps, metrics):
    return SweepResult(params=None, grid=grid, metrics=metrics, steps=np.asarray(steps),
                       diverged=np.zeros(len(grid), bool), state=None, conventions={}, timing={})


def test_run_names():
    assert run_name({"seed": 3, "learning_rate": 0.1}) == "lr=0.1,seed=3"
    assert (run_name({"seed": 0, "learning_rate": 1e-4, "l2": 0.001, "nesterov": True})
            == "lr=0.0001,seed=0,l2=0.001,nesterov=True")


def test_events_equal_the_metrics_per_run_step_and_component(tmp_path):
    rng = np.random.default_rng(0)
    grid = [{"seed": s, "learning_rate": lr} for s in (0, 1) for lr in (0.1, 0.3)]
    steps = [0, 10, 20]
    metrics = {"train_loss": rng.normal(size=(4, 3)), "test_accuracy": rng.uniform(size=(4, 3)).astype(np.float32),
               "top_eigenvalues": rng.normal(size=(4, 3, 2)), "per_example": rng.normal(size=(4, 3, 50)),
               "diverged_flag": np.zeros((4, 3), bool)}
    metrics["train_loss"][3, 2] = np.inf  # a diverging run keeps its non-finite value
    log = write_sweep_events(fake_result(rng, grid, steps, metrics), tmp_path)
    names = ["lr=0.1,seed=0", "lr=0.3,seed=0", "lr=0.1,seed=1", "lr=0.3,seed=1"]
    assert [p.name for p in log.runs] == names
    assert sorted(log.tags) == ["diverged_flag", "test_accuracy", "top_eigenvalues/0", "top_eigenvalues/1",
                                "train_loss"]
    assert list(log.skipped) == ["per_example"]

    events = read_scalars(tmp_path)
    assert sorted(events) == sorted(names)
    columns = {"train_loss": metrics["train_loss"], "test_accuracy": metrics["test_accuracy"],
               "top_eigenvalues/0": metrics["top_eigenvalues"][..., 0],
               "top_eigenvalues/1": metrics["top_eigenvalues"][..., 1], "diverged_flag": metrics["diverged_flag"]}
    for i, name in enumerate(names):
        assert sorted(events[name]) == sorted(columns)
        for tag, values in columns.items():
            got_steps, got = events[name][tag]
            np.testing.assert_array_equal(got_steps, steps)
            np.testing.assert_array_equal(got, values[i].astype(np.float32), err_msg=f"{name} {tag}")

    hparams = tbparse.SummaryReader(str(tmp_path), pivot=False, extra_columns={"dir_name"}).hparams
    lr = hparams[hparams["tag"] == "learning_rate"].set_index("dir_name")["value"]
    assert {name: lr[name] for name in names} == {n: g["learning_rate"] for n, g in zip(names, grid)}


def test_real_sweep_with_a_hook_round_trips(tmp_path):
    config = default_config()
    config.dataset, config.dataset_options = "moons", {"n_train": 64, "n_test": 64}
    config.model_options = {"width": 4, "depth": 1}
    config.steps, config.eval_every, config.batch_size = 20, 10, 0

    def on_eval(state, ctx):
        sq = sum(jnp.sum(x ** 2) for x in jax.tree.leaves(ctx.params))
        return state, {"param_norm": jnp.sqrt(sq), "norm_and_step": jnp.stack([sq, ctx.step.astype(jnp.float32)])}

    result = sweep(config, seeds=[0, 1], learning_rates=[0.1, 0.5],
                   hooks={"norm": Hook(init=lambda ctx: jnp.zeros(()), on_eval=on_eval)})
    log = write_sweep_events(result, tmp_path)
    events = read_scalars(tmp_path)
    assert {"param_norm", "norm_and_step/0", "norm_and_step/1", "train_loss", "test_accuracy"} <= set(log.tags)
    for i, point in enumerate(result.grid):
        run = events[run_name(point)]
        for name, values in result.metrics.items():
            columns = ({name: values} if values.ndim == 2
                       else {f"{name}/{k}": values[..., k] for k in range(values.shape[2])})
            for tag, column in columns.items():
                np.testing.assert_array_equal(run[tag][0], result.steps)
                np.testing.assert_array_equal(run[tag][1], np.asarray(column[i], np.float32), err_msg=f"{point} {tag}")
    np.testing.assert_array_equal(events[run_name(result.grid[0])]["norm_and_step/1"][1], result.steps)
