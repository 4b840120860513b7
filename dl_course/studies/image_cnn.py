"""Image classification with the 2D CNN and the small ResNet (batch norm), and the Module 1 task
builder shared by the MNIST-1D and augmentation studies.

Study: the LeNet-style ``cnn2d`` and the batch-norm ``resnet`` (He et al. 2016, "Deep Residual
Learning for Image Recognition") trained on scikit-learn's 8x8 ``digits`` by default, or on a
prepared tfds dataset (``--config.dataset=tfds:cifar10``), optionally with random shifts (and
flips) applied to every training minibatch. Batch norm: in train mode each BN layer normalises
with the minibatch's statistics and updates running averages (``momentum`` 0.9) that live in the
run's ``model_state["batch_stats"]``; every reported metric is in eval mode, i.e. with the running
averages. For BN models the study also reports the test accuracy in train mode (test minibatches
normalised by their own statistics) and re-computes the eval-mode test accuracy on the host from
the final state as a check of the engine's number.

Task builder (``model_task``): a registered model as a supervised Task, optionally with minibatch
augmentation (``dl_course.data.augment``), and with the convolutions of ``flax.linen.Conv``
computed as slices on CPU (``conv_impl="auto"``, see ``dl_course.models.conv``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np

from dl_course import models as models_lib
from dl_course import results
from dl_course.data import augment as augment_lib
from dl_course.train import Task, sweep, supervised_task
from dl_course.models.conv import resolve_conv_impl, with_conv_impl
from dl_course.train.build import load_data

# --------------------------------------------------------------------------- task builder


def make_model(name: str, options: dict, num_outputs: int) -> nn.Module:
    """``dl_course.models.get(name, num_outputs=..., **options)``."""
    return models_lib.get(name, **{"num_outputs": num_outputs, **dict(options)})


def model_task(name: str, options: dict, loss: str, num_classes: int, conv_impl: str = "auto",
               augmentation=None) -> Task:
    """A supervised Task for model ``name``: loss ``loss`` (mean over examples), convolutions sliced
    or XLA's (``dl_course.models.conv``), and, if given, ``augmentation(key, x)`` applied to every
    training minibatch (``dl_course.data.augment.augmented_loss``)."""
    task = with_conv_impl(supervised_task(make_model(name, options, num_classes), loss, num_classes), conv_impl)
    if augmentation is not None:
        task = task._replace(loss=augment_lib.augmented_loss(task.loss, augmentation))
    return task


def predict(task: Task, params, model_state, x, batch_size: int = 1024) -> np.ndarray:
    """Eval-mode outputs of ONE run (no run axis) on ``x``, in batches, as numpy."""
    apply = jax.jit(task.apply)
    return np.concatenate([np.asarray(apply(params, model_state, x[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)])


def run_slice(tree, i: int):
    """Run ``i`` of a pytree with a leading run axis."""
    return jax.tree.map(lambda a: a[i], tree)


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """``C[t, p]`` = number of examples of true class ``t`` predicted as ``p``."""
    c = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(c, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return c


def train_mode_accuracy_fn(task: Task):
    """``f(params, model_state, x, y, batch_size)``: accuracy with batch norm in *train* mode, each
    test minibatch of ``batch_size`` normalised by its own statistics (running averages unused, the
    updated statistics discarded); the last incomplete minibatch is dropped."""
    acc = jax.jit(lambda p, ms, b: task.loss(p, ms, b, jax.random.PRNGKey(0), True)[1][1]["accuracy"])

    def f(params, model_state, x, y, batch_size: int) -> float:
        n = (len(x) // batch_size) * batch_size
        return float(np.mean([float(acc(params, model_state, {"x": x[i:i + batch_size], "y": y[i:i + batch_size]}))
                              for i in range(0, n, batch_size)]))

    return f


# --------------------------------------------------------------------------- study


def run(config, run_dir: results.RunDir) -> dict:
    """Train every model of ``config.models`` on ``config.dataset`` (seeds vmapped); learning
    curves, confusion matrix, batch-norm train/eval comparison; write the results."""
    from dl_course.plotting import module1 as plots

    data = load_data(config)
    aug = None
    if config.augment:
        kind = augment_lib.kind_for(data.input_shape)
        aug = augment_lib.make(kind, **config.augment_options[kind].to_dict())
    rows, curves, confusions, arrays, conventions = [], {}, {}, {}, None
    for name in config.models:
        cfg = config.copy_and_resolve_references()
        cfg.model = name
        cfg.model_options = config.model_options_by_model[name].copy_and_resolve_references()
        cfg.steps = int(config.steps_by_model[name])
        task = model_task(name, cfg.model_options.to_dict(), cfg.loss, data.num_classes, config.conv_impl, aug)
        plain = task if aug is None else model_task(name, cfg.model_options.to_dict(), cfg.loss, data.num_classes,
                                                   config.conv_impl)
        res = sweep(cfg, task=task, data=data, progress=True)
        conventions = conventions or dict(res.conventions)
        has_bn = bool(res.state.model_state)
        train_mode_accuracy = train_mode_accuracy_fn(plain) if has_bn else None
        cm = np.zeros((data.num_classes, data.num_classes), np.int64)
        for i, g in enumerate(res.grid):
            params, ms = run_slice(res.params, i), run_slice(res.state.model_state, i)
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
                row["test_accuracy_train_mode_bn"] = train_mode_accuracy(params, ms, data.x_test, data.y_test,
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
    run_dir.figure("confusion.png", plots.confusion_matrices(confusions, title=f"{data.name} test set, summed over seeds"))
    print(f"{'model':>8} {'test acc (mean ± std over seeds)':>34}")
    for m, v in by_model.items():
        print(f"{m:>8} {np.mean(v):>22.4f} ± {np.std(v):.4f}")
    headline = {f"test_accuracy_{m}": float(np.mean(v)) for m, v in by_model.items()}
    headline.update({f"test_accuracy_std_{m}": float(np.std(v)) for m, v in by_model.items()})
    bn_rows = [r for r in rows if r["batch_norm"]]
    if bn_rows:
        headline["bn_test_accuracy_train_mode"] = float(np.mean([r["test_accuracy_train_mode_bn"] for r in bn_rows]))
    headline["max_abs_engine_vs_host_eval_accuracy"] = float(max(abs(r["test_accuracy"] - r["test_accuracy_host_eval_mode"])
                                                                 for r in rows))
    conventions.update({
        "batch_norm": "train mode: minibatch statistics, running averages updated with momentum 0.9 and kept in "
                      "model_state['batch_stats']; every reported metric in eval mode (running averages); "
                      "test_accuracy_train_mode_bn: test minibatches normalised by their own statistics",
        "augmentation": (f"{augment_lib.kind_for(data.input_shape)} {config.augment_options[augment_lib.kind_for(data.input_shape)].to_dict()} "
                         "on every training minibatch (fresh draw per step)") if config.augment else "none",
        "conv_impl": resolve_conv_impl(config.conv_impl),
        "confusion": "rows true class, columns predicted class, test set, summed over seeds",
    })
    results.write_results(run_dir, config, "image_cnn", conventions, rows, headline, arrays)
    return headline
