"""From a config to a validated ``Program`` — every check that can fail runs here, before any
compilation, and raises ``ConfigError`` with one line naming the problem and the valid choices."""

from __future__ import annotations

import inspect
import numbers

import jax
import numpy as np

from dl_course import data as data_lib
from dl_course import models as models_lib
from dl_course import optim
from dl_course.errors import ConfigError
from dl_course.models import conv
from dl_course.train import losses as losses_lib
from dl_course.train.config import check_keys
from dl_course.train.program import ENGINE_HPARAMS, SHUFFLES, Program
from dl_course.train.task import Task, supervised_task


def _largest_divisor_at_most(n: int, cap: int) -> int:
    for d in range(min(n, cap), 0, -1):
        if n % d == 0:
            return d
    return 1


def eval_sizes(n: int, cap: int) -> tuple[int, int]:
    """(examples used, chunk size): all ``n`` in equal chunks <= cap when a divisor >= cap/4 exists,
    else the largest multiple of ``cap`` (the count used is recorded with the results)."""
    d = _largest_divisor_at_most(n, cap)
    if d == n or d >= cap // 4:
        return n, d
    return (n // cap) * cap, cap


def check_finite(data: data_lib.Dataset) -> None:
    """``ConfigError`` naming the array and the first index of a NaN/inf in the dataset."""
    for name in ("x_train", "y_train", "x_test", "y_test"):
        a = np.asarray(getattr(data, name))
        if np.issubdtype(a.dtype, np.inexact):
            bad = ~np.isfinite(a)
            if bad.any():
                index = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ConfigError(f"dataset {data.name!r}: {name} holds a non-finite value ({a[index]}) at index "
                                  f"{index[0] if len(index) == 1 else index} ({int(bad.sum())} in all)")


def load_data(config) -> data_lib.Dataset:
    try:
        data_lib.check_name(config.dataset)
        return data_lib.load(config.dataset, **config.dataset_options.to_dict())
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e).splitlines()[0]) from None


def make_model(config, data: data_lib.Dataset):
    options = config.model_options.to_dict()
    if "num_outputs" not in options:
        if config.loss in losses_lib.BINARY_ONLY or (config.loss == "hinge" and data.num_classes == 2
                                                     and config.model == "linear"):
            options["num_outputs"] = 1
        elif data.num_classes > 0:
            options["num_outputs"] = data.num_classes
        else:
            options["num_outputs"] = int(np.prod(data.y_train.shape[1:]) or 1)
    try:
        return models_lib.get(config.model, **options)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e).splitlines()[0]) from None


def make_task(config, data: data_lib.Dataset, augmentation=None) -> Task:
    """The supervised Task the engine builds from ``config``: ``make_model``, the per-example loss
    ``config.loss`` (mean over the batch), convolutions per ``config.conv_impl``
    (``dl_course.models.conv``), and, if given, ``augmentation(key, x)`` applied afresh to every
    training minibatch (``dl_course.data.augment.augmented_loss``)."""
    conv_impl = config.get("conv_impl", "auto")
    if conv_impl not in conv.CONV_IMPLS:
        raise ConfigError(f"unknown conv_impl {conv_impl!r}; valid: {', '.join(conv.CONV_IMPLS)}")
    task = conv.with_conv_impl(supervised_task(make_model(config, data), config.loss, data.num_classes), conv_impl)
    if augmentation is not None:
        from dl_course.data.augment import augmented_loss

        task = task._replace(loss=augmented_loss(task.loss, augmentation))
    return task


def build_program(config, data: data_lib.Dataset, task: Task | None, hooks: dict | None,
                  grid_keys: list[str]) -> tuple[Program, Task]:
    """Validate ``config`` against ``data`` and the grid keys; return the static Program."""
    check_keys(config)
    check_finite(data)
    if config.loss not in losses_lib.LOSSES:
        raise ConfigError(f"unknown loss {config.loss!r}; valid: {', '.join(sorted(losses_lib.LOSSES))}")
    if config.loss in losses_lib.BINARY_ONLY and data.num_classes != 2:
        raise ConfigError(f"loss {config.loss!r} needs binary labels; dataset {data.name!r} has "
                          f"{data.num_classes} classes")
    if data.num_classes == 0 and config.loss != "mse" and task is None:
        raise ConfigError(f"dataset {data.name!r} is a regression set; use loss 'mse' (got {config.loss!r})")
    if config.get("dtype", "float32") != "float32":
        raise ConfigError(f"dtype {config.dtype!r} is not supported by the engine; valid: float32 "
                          "(float64 work, e.g. the IGR study, runs outside the engine with jax x64)")
    opt_options = config.optimizer_options.to_dict()
    structural = {k: v for k, v in opt_options.items()
                  if isinstance(v, (str, bool)) or not isinstance(v, numbers.Number)}
    try:
        factory = optim.get(config.optimizer)
        allowed = optim.option_names(config.optimizer, **structural)
        bad = sorted(set(opt_options) - set(allowed))
        if bad:
            raise ValueError(f"unknown optimizer_options {bad} for {config.optimizer!r}; valid: {', '.join(allowed)}")
        hyper = optim.hyperparameter_names(config.optimizer, **structural)
    except ValueError as e:
        raise ConfigError(str(e).splitlines()[0]) from None
    task_hp = set(task.hparams) if task is not None else set()
    sweepable = set(ENGINE_HPARAMS) | (set(hyper) - {"learning_rate"}) | task_hp
    bad = [k for k in grid_keys if k not in sweepable]
    if bad:
        raise ConfigError(f"cannot sweep {bad} with optimizer {config.optimizer!r}; "
                          f"sweepable: {', '.join(sorted(sweepable))}")
    clash = set(grid_keys) & set(opt_options)
    if clash:
        raise ConfigError(f"{sorted(clash)} given both as optimizer_options and as a grid axis; keep one")
    if "dropout_rate" in grid_keys:
        call = type(make_model(config, data)).__call__ if task is None else None
        if call is None or "dropout_rate" not in inspect.signature(call).parameters:
            raise ConfigError(f"cannot sweep dropout_rate with model {config.model!r}" + (
                " and a given Task" if task is not None else "") + "; models taking a traced dropout rate: mlp")
    if "random_label_fraction" in grid_keys and data.num_classes == 0:
        raise ConfigError("random_label_fraction needs a classification dataset")
    steps, every = int(config.steps), int(config.eval_every)
    if steps <= 0 or every <= 0 or steps % every:
        raise ConfigError(f"steps ({steps}) must be a positive multiple of eval_every ({every})")
    bs = int(config.batch_size)
    if bs < 0 or bs > data.n_train:
        raise ConfigError(f"batch_size {bs} must be in [1, {data.n_train}] (the training set size), "
                          "or 0 for full batch")
    shuffle = config.get("shuffle", "index_shuffle")
    if shuffle not in SHUFFLES:
        raise ConfigError(f"unknown shuffle {shuffle!r}; valid: {', '.join(SHUFFLES)}")
    try:
        schedule = optim.get_schedule(config.schedule, steps, **config.schedule_options.to_dict())
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e).splitlines()[0]) from None
    for key in ("target_train_loss", "target_train_accuracy"):
        value = float(config.get(key, 0.0))
        if not (value >= 0.0 and np.isfinite(value)):
            raise ConfigError(f"{key} must be >= 0 (0 = off), got {config.get(key)}")
    if float(config.get("target_train_accuracy", 0.0)) > 1.0:
        raise ConfigError(f"target_train_accuracy must be in [0, 1], got {config.target_train_accuracy}")
    reg_bs = int(config.get("regularizer_batch_size", 0))
    if reg_bs < 0 or (reg_bs and (bs or data.n_train) % reg_bs):
        raise ConfigError(f"regularizer_batch_size {reg_bs} must divide the batch size {bs or data.n_train} "
                          "(0 = the whole batch)")
    if int(config.get("max_parallel_runs", 0)) < 0:
        raise ConfigError(f"max_parallel_runs must be >= 0 (0 = all runs at once), got {config.max_parallel_runs}")
    if task is None:
        task = make_task(config, data)
        try:
            jax.eval_shape(task.init, jax.random.PRNGKey(0), data.x_train[:1])
        except Exception as e:  # flax raises assorted errors for shape mismatches
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise ConfigError(f"model {config.model!r} does not accept inputs of shape {data.input_shape} "
                              f"from dataset {data.name!r}: {reason}") from None
    for name, h in (hooks or {}).items():
        if not hasattr(h, "init"):
            raise ConfigError(f"hook {name!r} is not a dl_course.train.Hook")
    n_eval_train = int(config.eval_examples) or data.n_train
    if not 0 < n_eval_train <= data.n_train:
        raise ConfigError(f"eval_examples {config.eval_examples} must be in [1, {data.n_train}] or 0 for all")
    cap = int(config.eval_batch_size)
    n_eval_train, chunk_train = eval_sizes(n_eval_train, cap)
    n_eval_test, chunk_test = eval_sizes(data.n_test, cap)
    prog = Program(task=task, factory=factory, optimizer_options=opt_options, schedule=schedule,
                   hooks=dict(hooks or {}), n_train=data.n_train, batch_size=bs, eval_every=every,
                   num_classes=data.num_classes, eval_chunk_train=chunk_train, eval_chunk_test=chunk_test,
                   num_eval_train=n_eval_train, num_eval_test=n_eval_test, shuffle=SHUFFLES[shuffle],
                   regularizer_batch_size=reg_bs)
    return prog, task
