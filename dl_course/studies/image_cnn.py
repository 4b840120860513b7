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

Task builder (``model_task``): a registered model (or the MNIST-1D ``gru``) as a supervised Task,
optionally with minibatch augmentation (``dl_course.data.augment``), and with the convolutions of
``flax.linen.Conv`` computed by ``sliced_conv_general_dilated`` on CPU (``conv_impl="auto"``).
Why: XLA:CPU's convolution is slow for these small shapes -- measured in the engine on this
project's 2-core machine, 500 Adam steps x 4 runs of ``cnn1d`` on MNIST-1D (batch 100) took
122 CPU-s with ``lax.conv_general_dilated`` and 9.2 CPU-s sliced; 200 steps x 2 runs of ``resnet``
on digits took 92 CPU-s with XLA's convolution. The sliced form is the same linear map (checked in
the tests against ``lax.conv_general_dilated`` on every conv model, forward and gradient).
"""

from __future__ import annotations

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dl_course import data as data_lib
from dl_course import models as models_lib
from dl_course import results
from dl_course.data import augment as augment_lib
from dl_course.train import Task, sweep, supervised_task
from dl_course.train.build import load_data

# --------------------------------------------------------------------------- convolution, sliced


def _channels_last(dn, nd: int) -> bool:
    spatial = tuple(range(1, nd + 1))
    return (tuple(dn.lhs_spec) == (0, nd + 1) + spatial and tuple(dn.out_spec) == (0, nd + 1) + spatial
            and tuple(dn.rhs_spec) == (nd + 1, nd) + tuple(range(nd)))


def sliced_conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                                dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
    r"""Drop-in for ``lax.conv_general_dilated`` computing the convolution as ``prod(k)`` strided
    slices and one matrix product (im2col).

    For channels-last input ``x`` ``[N, *S, C]`` (zero-padded as ``padding`` says), kernel ``w``
    ``[*k, C, F]`` and strides ``s``:

    .. math:: y[n, o, f] = \sum_{\delta \in \prod_i \{0..k_i-1\}} \sum_c x[n, s \odot o + \delta, c]\, w[\delta, c, f]

    The slices ``x[:, s*o + delta, :]`` are stacked to ``[N, *O, prod(k), C]`` and contracted with
    ``w`` reshaped to ``[prod(k), C, F]``. Anything else (dilations, feature groups, other
    layouts) falls back to ``lax.conv_general_dilated``. Used as
    ``nn.Conv(..., conv_general_dilated=sliced_conv_general_dilated)``.
    """
    nd = lhs.ndim - 2
    dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    plain = (feature_group_count == 1 and kwargs.get("batch_group_count", 1) == 1
             and all(d == 1 for d in (lhs_dilation or ())) and all(d == 1 for d in (rhs_dilation or ())))
    if not (plain and _channels_last(dn, nd)):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision, **kwargs)
    k = rhs.shape[:nd]
    strides = tuple(window_strides)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:-1], k, strides, padding)
    x = jnp.pad(lhs, [(0, 0), *[tuple(p) for p in padding], (0, 0)])
    out = [(x.shape[1 + i] - k[i]) // strides[i] + 1 for i in range(nd)]
    taps = [x[(slice(None),) + tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, strides, out))]
            for offset in itertools.product(*(range(ki) for ki in k))]
    patches = jnp.stack(taps, axis=-2)  # [N, *O, prod(k), C], taps in row-major kernel order
    return jnp.einsum("...kc,kcf->...f", patches, rhs.reshape((-1,) + rhs.shape[-2:]), precision=precision)


def _sliced_conv_interceptor(next_fun, args, kwargs, context):
    """``nn.intercept_methods`` hook: every plain ``nn.Conv`` called inside uses the sliced conv."""
    m = context.module
    if (context.method_name == "__call__" and isinstance(m, nn.Conv) and m.conv_general_dilated is None
            and m.conv_general_dilated_cls is None):
        # Modules are frozen dataclasses; this instance lives only for the current apply/init.
        object.__setattr__(m, "conv_general_dilated", sliced_conv_general_dilated)
    return next_fun(*args, **kwargs)


def with_sliced_conv(fn):
    """``fn`` run with every plain ``nn.Conv`` inside computing its convolution sliced."""

    def wrapped(*args, **kwargs):
        with nn.intercept_methods(_sliced_conv_interceptor):
            return fn(*args, **kwargs)

    return wrapped


def resolve_conv_impl(conv_impl: str) -> str:
    """``"auto"`` -> ``"sliced"`` on the CPU backend, ``"xla"`` on accelerators (cuDNN etc.)."""
    if conv_impl not in ("auto", "sliced", "xla"):
        raise ValueError(f"unknown conv_impl {conv_impl!r}; valid: auto, sliced, xla")
    if conv_impl == "auto":
        return "sliced" if jax.default_backend() == "cpu" else "xla"
    return conv_impl


# --------------------------------------------------------------------------- task builder


def make_model(name: str, options: dict, num_outputs: int) -> nn.Module:
    """``dl_course.models.get(name, num_outputs=..., **options)``; ``gru`` from
    ``dl_course.models.gru`` if the registry does not hold it yet."""
    options = {"num_outputs": num_outputs, **dict(options)}
    if name == "gru" and name not in models_lib.REGISTRY:
        from dl_course.models.gru import GRU

        return GRU(**options)
    return models_lib.get(name, **options)


def model_task(name: str, options: dict, loss: str, num_classes: int, conv_impl: str = "auto",
               augmentation=None) -> Task:
    """A supervised Task for model ``name``: loss ``loss`` (mean over examples), convolutions sliced
    or XLA's (``resolve_conv_impl``), and, if given, ``augmentation(key, x)`` applied to every
    training minibatch (``dl_course.data.augment.augmented_loss``)."""
    task = supervised_task(make_model(name, options, num_classes), loss, num_classes)
    if resolve_conv_impl(conv_impl) == "sliced":
        task = Task(init=with_sliced_conv(task.init), loss=with_sliced_conv(task.loss),
                    apply=with_sliced_conv(task.apply))
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
