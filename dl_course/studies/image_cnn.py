"""Image classification with the 2D CNN and the small ResNet (batch norm).

The LeNet-style ``cnn2d`` and the batch-norm ``resnet`` (He et al. 2016, "Deep Residual
Learning for Image Recognition") trained on scikit-learn's 8x8 ``digits`` by default, or on a
prepared tfds dataset (``--config.train.dataset=tfds:cifar10``), optionally with random shifts (and
flips) applied to every training minibatch. Batch norm: in train mode each BN layer normalises
with the minibatch's statistics and updates running averages (``momentum`` 0.9) that live in the
run's ``model_state["batch_stats"]``; every reported metric is in eval mode, i.e. with the running
averages. For BN models the study also reports the test accuracy in train mode (test minibatches
normalised by their own statistics) and re-computes the eval-mode test accuracy on the host from
the final state as a check of the engine's number.
"""

from __future__ import annotations

import copy

import jax
import numpy as np

from dl_course import results
from dl_course.data import augment as augment_lib
from dl_course.measures import confusion_matrix
from dl_course.models.conv import resolve_conv_impl
from dl_course.train import predict, sweep, train_mode_accuracy
from dl_course.train.build import load_data, make_task


def run(config, run_dir: results.RunDir) -> dict:
    """Train every model of ``config.models`` on ``config.train.dataset`` (seeds vmapped); learning
    curves, confusion matrix, batch-norm train/eval comparison; write the results."""
    from dl_course.plotting import classification as plots

    data = load_data(config.train)
    aug = None
    if config.augment:
        kind = augment_lib.kind_for(data.input_shape)
        aug = augment_lib.make(kind, **config.augment_options[kind].to_dict())
    rows, curves, confusions, arrays, conventions = [], {}, {}, {}, None
    for name in config.models:
        cfg = copy.deepcopy(config.train)
        cfg.model = name
        cfg.model_options = copy.deepcopy(config.model_options_by_model[name])
        cfg.steps = int(config.steps_by_model[name])
        task = make_task(cfg, data, aug)
        plain = task if aug is None else make_task(cfg, data)
        res = sweep(cfg, task=task, data=data, progress=True)
        conventions = conventions or dict(res.conventions)
        has_bn = bool(res.state.model_state)
        cm = np.zeros((data.num_classes, data.num_classes), np.int64)
        for i, g in enumerate(res.grid):
            params, ms = jax.tree.map(lambda a: a[i], (res.params, res.state.model_state))
            pred = predict(task, params, ms, data.x_test).argmax(-1)
            cm += confusion_matrix(data.y_test, pred, data.num_classes)
            row = {"model": name, "dataset": data.name, "seed": g["seed"], "learning_rate": g["learning_rate"],
                   "diverged": bool(res.diverged[i]), "batch_norm": has_bn,
                   "test_accuracy": float(res.metrics["test_accuracy"][i, -1]),
                   "train_accuracy": float(res.metrics["train_accuracy"][i, -1]),
                   "test_loss": float(res.metrics["test_loss"][i, -1]),
                   "test_accuracy_host_eval_mode": float(np.mean(pred == data.y_test)),
                   "augment": bool(config.augment), "steps": int(cfg.steps)}
            if has_bn:
                row["test_accuracy_train_mode_bn"] = train_mode_accuracy(plain, params, ms, data.x_test, data.y_test,
                                                                         int(cfg.batch_size) or 128)
            rows.append(row)
        curves[name] = (res.steps, res.metrics)
        confusions[name] = cm
        for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
            arrays[f"{name}/{k}"] = res.metrics[k]
        arrays[f"{name}/confusion"] = cm
        arrays["steps"] = res.steps
    by_model = {m: [r["test_accuracy"] for r in rows if r["model"] == m] for m in config.models}
    run_dir.figure("learning_curves.png", plots.image_learning_curves(curves, title=f"{data.name}: CNN and ResNet"))
    run_dir.figure("confusion.png", plots.confusion_matrices(confusions,
                                                             title=f"{data.name} test set, summed over seeds"))
    print(f"{'model':>8} {'test acc (mean ± std over seeds)':>34}")
    for m, v in by_model.items():
        print(f"{m:>8} {np.mean(v):>22.4f} ± {np.std(v):.4f}")
    headline = {f"test_accuracy_{m}": float(np.mean(v)) for m, v in by_model.items()}
    headline.update({f"test_accuracy_std_{m}": float(np.std(v)) for m, v in by_model.items()})
    bn_rows = [r for r in rows if r["batch_norm"]]
    if bn_rows:
        headline["bn_test_accuracy_train_mode"] = float(np.mean([r["test_accuracy_train_mode_bn"] for r in bn_rows]))
    headline["max_abs_engine_vs_host_eval_accuracy"] = float(max(
        abs(r["test_accuracy"] - r["test_accuracy_host_eval_mode"]) for r in rows))
    conventions.update({
        "batch_norm": "train mode: minibatch statistics, running averages updated with momentum 0.9 and kept in "
                      "model_state['batch_stats']; every reported metric in eval mode (running averages); "
                      "test_accuracy_train_mode_bn: test minibatches normalised by their own statistics",
        "augmentation": (f"{augment_lib.kind_for(data.input_shape)} "
                         f"{config.augment_options[augment_lib.kind_for(data.input_shape)].to_dict()} "
                         "on every training minibatch (fresh draw per step)") if config.augment else "none",
        "conv_impl": resolve_conv_impl(config.train.conv_impl),
        "confusion": "rows true class, columns predicted class, test set, summed over seeds",
    })
    results.write_results(run_dir, config, "image_cnn", conventions, rows, headline, arrays)
    return headline
