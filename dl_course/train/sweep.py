"""``sweep``: a whole grid of runs (seeds x learning rates x other scalars) as ONE vmapped program,
its run axis sharded over every device with a ``Mesh`` and ``NamedSharding``.

The per-run program (``dl_course.train.program``) is vmapped; hyperparameters enter as arrays,
so changing their values never recompiles. Compiled functions are cached on the engine config
(which holds no study keys: ``dl_course.train.config.check_keys``), the grid's keys and size, the
task and hook objects, the data shapes and the device mesh. The host drives the run in chunks
(``dl_course.train.driver``) to report progress, checkpoint for ``resume`` and stop early.

Runs are padded to a multiple of the device count by repeating the last grid point; with
``config.max_parallel_runs`` the grid is trained in waves of that many runs through the same
compiled program (the last wave padded the same way); padding is dropped from the results.
Multi-process: after ``jax.distributed.initialize()`` the mesh spans every process's devices and
results are gathered with ``process_allgather`` (``dl_course.train.placement``).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.errors import ConfigError
from dl_course.models.conv import resolve_conv_impl
from dl_course.train import checkpoint as ckpt_lib
from dl_course.train import driver
from dl_course.train.build import build_program, load_data
from dl_course.train.exact_stop import BAND, replay_to_target
from dl_course.train.grid import make_grid, pad_runs, stack_hparams
from dl_course.train.placement import put, run_mesh, shardings, to_host
from dl_course.train.program import evaluate, init_run, run_chunk, stop_at_target, tree_where

_CACHE: collections.OrderedDict[Any, tuple] = collections.OrderedDict()
_LISTENERS: list[Callable] = []
_CACHE_SIZE = 16
#: Package versions that change the computation (part of the resume fingerprint).
_VERSIONED = ("dl_course", "jax", "jaxlib", "flax", "optax")


@dataclasses.dataclass
class SweepResult:
    """Results of a sweep, one entry per grid point along the leading run axis.

    Attributes:
      params: stacked final parameters (numpy), leading axis = run.
      grid: list of dicts, one per run: ``seed``, ``learning_rate`` and the other grid keys.
      metrics: dict name -> ``[run, eval_point, ...]`` (train_loss, train_accuracy, test_loss,
        test_accuracy for classification, and every hook metric).
      steps: ``[eval_point]`` optimizer step of each evaluation (0, eval_every, ...; shorter than
        ``steps / eval_every + 1`` when every run reached its target early).
      diverged: ``[run]`` bool.
      state: the final stacked TrainState (numpy), incl. hook states in ``state.extras``.
      conventions: loss reduction, batching, eval mode and subsets, dtype, devices, target stop.
      timing: seconds for compilation + first chunk, and for the whole sweep.
      converged: ``[run]`` bool, the run reached ``config.target_train_loss`` (False when off).
      steps_to_target: ``[run]`` int, the first step at which it did (-1 if never or off): the
        run's final state is that step's (``dl_course.train.exact_stop``).
      step_fraction: ``[run]`` float, the fraction of the last update applied at the stop (1 but
        where a whole step would have ended below ``BAND`` x the target loss).
    """

    params: Any
    grid: list
    metrics: dict
    steps: np.ndarray
    diverged: np.ndarray
    state: Any
    conventions: dict
    timing: dict
    converged: np.ndarray = None
    steps_to_target: np.ndarray = None
    step_fraction: np.ndarray = None

    def metric(self, name: str, point: int = -1) -> np.ndarray:
        """``metrics[name][:, point]``: one value per run at an evaluation point (default last)."""
        return self.metrics[name][:, point]

    def train_labels(self, data, num_examples: int | None = None) -> np.ndarray:
        """``[run, num_examples]`` training labels each run was trained on: its own when the sweep
        randomized labels in-graph (``random_label_fraction``), else the dataset's."""
        n = data.n_train if num_examples is None else int(num_examples)
        y_runs = getattr(self.state, "y_train", None)
        if y_runs is not None:
            return np.asarray(y_runs)[:, :n]
        return np.broadcast_to(np.asarray(data.y_train[:n]), (len(self.grid), n))


@contextlib.contextmanager
def listening(fn: Callable[[SweepResult], None]):
    """Within the context, ``fn(result)`` is called on the host after every finished sweep (e.g.
    the CLI's ``--tensorboard``, which writes each sweep of a study as TensorBoard runs)."""
    _LISTENERS.append(fn)
    try:
        yield
    finally:
        _LISTENERS.remove(fn)


def _targets(config) -> np.ndarray:
    return np.asarray([float(config.get("target_train_loss", 0.0)), float(config.get("target_train_accuracy", 0.0))],
                      np.float32)


def _programs(prog, n_int: int, vmapped: bool, shard_runs=None):
    """Jitted ``(init, eval, chunk)`` of all runs (vmapped, sharded) or of one run."""
    init = functools.partial(init_run, prog)

    def ev(state, data, targets):
        state, m = evaluate(prog, state, data)
        return stop_at_target(state, m, targets), m

    def finish(state, data, targets):  # the exact stop of pending runs, then their evaluation
        replayed = replay_to_target(prog, state, data, targets)
        evaluated, metrics = evaluate(prog, replayed, data)
        # hooks' on_eval advances only the replayed runs' state; the others keep theirs untouched
        extras = tree_where(state.pending, evaluated.extras, replayed.extras)
        return evaluated._replace(extras=extras), metrics

    chunk = functools.partial(run_chunk, prog, n_int)
    if not vmapped:
        return jax.jit(init), jax.jit(ev), jax.jit(chunk, donate_argnums=0), jax.jit(finish)
    return (jax.jit(jax.vmap(init, in_axes=(0, 0, None)), out_shardings=shard_runs),
            jax.jit(jax.vmap(ev, in_axes=(0, None, None)), out_shardings=(shard_runs, shard_runs)),
            jax.jit(jax.vmap(chunk, in_axes=(0, None, None, None)), out_shardings=(shard_runs, shard_runs),
                    donate_argnums=0),
            jax.jit(jax.vmap(finish, in_axes=(0, None, None)), out_shardings=(shard_runs, shard_runs)))


def _static_key(config, grid_keys, wave_size, n_int, task, hooks, data_sig, mesh):
    static = {k: v for k, v in config.to_dict().items()
              if k not in ("seeds", "learning_rates", "target_train_loss", "target_train_accuracy", "checkpoint_every",
                           "compact_runs")}
    return (json.dumps(static, sort_keys=True, default=str), tuple(grid_keys), wave_size, n_int,
            None if task is None else id(task), tuple((k, id(h)) for k, h in sorted((hooks or {}).items())),
            data_sig, tuple(d.id for d in mesh.devices.flat))


def _chunk_intervals(num_intervals: int, requested: int) -> int:
    target = requested if requested > 0 else max(1, num_intervals // 10)
    for d in range(min(target, num_intervals), 0, -1):
        if num_intervals % d == 0:
            return d
    return 1


def _host_data(data) -> dict:
    return {"x_train": data.x_train, "y_train": data.y_train, "x_test": data.x_test, "y_test": data.y_test}


def fingerprint(config, runs, data, task, hooks, num_devices: int) -> dict:
    """Everything that determines a sweep's computation, for checking a resume: the engine
    config (``checkpoint_every`` aside), the grid, the data (shapes, dtypes, sha256), the hooks
    and task (by name), the device count and the versions of the packages that compute."""
    from dl_course.results import package_versions

    digest = {k: {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype),
                  "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()[:16]}
              for k, v in _host_data(data).items()}

    def name(obj):
        fn = getattr(obj, "init", obj)
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"

    versions = package_versions()
    return {"engine_config": {k: v for k, v in config.to_dict().items() if k != "checkpoint_every"},
            "grid": runs, "data": {"name": data.name, **digest},
            "hooks": {k: name(h) for k, h in sorted((hooks or {}).items())},
            "task": "built from the config" if task is None else name(task),
            "num_devices": num_devices, "versions": {k: versions.get(k) for k in _VERSIONED}}


def conventions(config, prog, data, num_devices: int, engine_task: bool = True) -> dict:
    """The conventions recorded with every result of this sweep (``engine_task``: the engine
    built the supervised task, so it applied ``config.conv_impl``; a given Task does its own)."""
    targets = _targets(config)
    return {
        "loss": config.loss,
        "loss_reduction": "mean over examples",
        "batching": ("full-batch gradient descent" if prog.batch_size == 0 else
                     f"minibatches of {prog.batch_size} from per-epoch orders keyed by (seed, epoch), drawn by "
                     f"{config.get('shuffle', 'permutation')}; "
                     "last partial batch dropped"),
        "evaluation_mode": "eval (batch-norm running statistics, no dropout)",
        "train_metrics_examples": prog.num_eval_train,
        "test_metrics_examples": prog.num_eval_test,
        "dataset": data.name,
        "data_info": {k: v for k, v in data.info.items() if k != "permutation"},
        "dtype": config.get("dtype", "float32"),
        "seeds": "root key PRNGKey(seed) per run; named streams init/data/dropout/labels/hooks by fold_in",
        "divergence": "non-finite loss or state: run frozen at its last finite state (checked per interval, replayed "
                      "step by step), flagged diverged",
        "target_stop": ("off" if not np.any(targets > 0) else
                        "run frozen at the first optimizer step whose train metrics (eval mode, "
                        f"{prog.num_eval_train} train examples) meet "
                        + " and ".join(([f"train loss <= {targets[0]:g}"] if targets[0] > 0 else [])
                                       + ([f"train accuracy >= {targets[1]:g}"] if targets[1] > 0 else []))
                        + f" (checked every {prog.eval_every} steps, then the last interval replayed step by step"
                        + (f"; a last step that would end below {BAND:g} x the target is applied in part, "
                           "step_fraction" if targets[0] > 0 else "") + ")"),
        "devices": f"{num_devices} x {jax.devices()[0].device_kind} ({jax.default_backend()})",
        "conv_impl": (resolve_conv_impl(config.get("conv_impl", "auto")) if engine_task
                      else "chosen by the Task passed to the engine"),
    }


def _result(config, prog, data, runs, state, metrics, steps, n_dev, task, timing) -> SweepResult:
    stopped = np.asarray(state.stopped_at)
    return SweepResult(params=state.params, grid=runs, metrics=metrics, steps=steps,
                       diverged=np.asarray(state.diverged, bool), state=state,
                       conventions=conventions(config, prog, data, n_dev, task is None), timing=timing,
                       converged=stopped >= 0, steps_to_target=stopped.astype(np.int64),
                       step_fraction=np.asarray(state.step_fraction, np.float64))


def _cached_programs(config, prog, grid_keys, wave_size, n_int, task, hooks, host_data, mesh, shard_runs):
    """The jitted programs of this sweep's shape, from the cache (keyed on ``_static_key``)."""
    data_sig = tuple((k, v.shape, str(v.dtype)) for k, v in host_data.items())
    key = _static_key(config, grid_keys, wave_size, n_int, task, hooks, data_sig, mesh)
    if key not in _CACHE:
        _CACHE[key] = _programs(prog, n_int, True, shard_runs)
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return _CACHE[key]


def _pad_metrics(metrics: dict, length: int) -> dict:
    """Repeat the last evaluation of a wave that ended early (all its runs were frozen)."""
    return {k: v if v.shape[1] == length else np.concatenate([v, np.repeat(v[:, -1:], length - v.shape[1], 1)], 1)
            for k, v in metrics.items()}


def sweep(config, seeds=None, learning_rates=None, *, hooks: dict | None = None, task=None, data=None,
          checkpoint_dir=None, resume: bool = False, progress: bool = False,
          on_chunk: Callable[[driver.ChunkInfo], None] | None = None, **grid) -> SweepResult:
    """Train every grid point of ``seeds x learning_rates x grid`` in one vmapped, jitted program.

    Args:
      config: the engine's ``ConfigDict`` (``dl_course.train.config.default_config``).
      seeds, learning_rates: grid axes (default: ``config.seeds``, ``config.learning_rates``).
      hooks: dict name -> ``Hook`` (measurements / training-time state), vmapped with the runs.
      task: a ``Task`` replacing the supervised one built from the config (e.g. a score model).
      data: a ``Dataset`` replacing ``dl_course.data.load(config.dataset, ...)``.
      checkpoint_dir: where to write orbax checkpoints every ``config.checkpoint_every`` chunks
        (and on SIGTERM / SIGINT, before raising ``driver.Preempted``).
      resume: continue from the newest valid checkpoint in ``checkpoint_dir``; the checkpoints
        must come from the same computation (``fingerprint``), else ``ConfigError``.
      progress: show a tqdm progress bar over waves x chunks.
      on_chunk: called on the host after every chunk with a ``driver.ChunkInfo``.
      **grid: further axes, name -> list of values (optimizer hyperparameters such as
        ``momentum``, ``weight_decay``; engine ones ``random_label_fraction``, ``l2``).
    """
    seeds = list(config.seeds) if seeds is None else list(np.atleast_1d(seeds).tolist())
    learning_rates = (list(config.learning_rates) if learning_rates is None
                      else list(np.atleast_1d(learning_rates).tolist()))
    runs = make_grid(seeds, learning_rates, **grid)
    data = load_data(config) if data is None else data
    prog, _ = build_program(config, data, task, hooks, list(grid))
    if resume and checkpoint_dir is None:
        raise ConfigError("resume needs a checkpoint directory")

    mesh = run_mesh()
    n_dev = mesh.devices.size
    waves = pad_runs(runs, n_dev, int(config.get("max_parallel_runs", 0)))
    shard_runs, replicated = shardings(mesh)
    num_intervals = int(config.steps) // int(config.eval_every)
    n_int = _chunk_intervals(num_intervals, int(config.chunk_evals))
    plan = driver.WavePlan(num_chunks=num_intervals // n_int, intervals_per_chunk=n_int,
                           eval_every=int(config.eval_every), checkpoint_every=int(config.checkpoint_every),
                           targets=_targets(config))
    host_data = _host_data(data)
    init_fn, eval_fn, chunk_fn, finish_fn = _cached_programs(config, prog, list(grid), len(waves[0]), n_int, task,
                                                             hooks, host_data, mesh, shard_runs)
    if checkpoint_dir is not None:
        ckpt_lib.check_fingerprint(checkpoint_dir, fingerprint(config, runs, data, task, hooks, n_dev), resume)
    dev_data = {k: put(v, replicated) for k, v in host_data.items()}
    compaction = None
    if bool(config.get("compact_runs", False)) and plan.num_chunks > 1:
        def chunk_for(size):
            return _cached_programs(config, prog, list(grid), size, n_int, task, hooks, host_data, mesh, shard_runs)[2]

        compaction = driver.Compaction(chunk_for=chunk_for, multiple=n_dev,
                                       place=lambda host: jax.tree.map(lambda x: put(x, shard_runs), host))
    bar = None
    if progress and jax.process_index() == 0:  # progress and logs from process 0 only
        from tqdm.auto import tqdm

        bar = tqdm(total=len(waves) * plan.num_chunks, desc="sweep", unit="chunk", leave=False)
    timing: dict = {}
    t0 = time.perf_counter()
    states, wave_metrics = [], []
    for w, wave_runs in enumerate(waves):
        seeds_arr = put(np.asarray([r["seed"] for r in wave_runs], np.uint32), shard_runs)
        hparams = {k: put(v, shard_runs) for k, v in stack_hparams(wave_runs).items()}
        state = init_fn(seeds_arr, hparams, dev_data)
        if w == 0:  # where the runs actually live: read off the device arrays' shards
            timing["placement"] = {"devices": len(state.diverged.sharding.device_set),
                                   "runs_per_device": [int(sh.data.shape[0])
                                                       for sh in state.diverged.addressable_shards]}
        state, m0 = eval_fn(state, dev_data, plan.targets)
        m0 = {k: v[:, None] for k, v in to_host(m0).items()}
        found = ckpt_lib.restore_newest(ckpt_lib.wave_dir(checkpoint_dir, w), state) if resume else None
        if found is not None and found[0]:  # a finished wave: its final state and metrics
            state, metrics = to_host(found[2]), found[3]
        else:
            state, metrics = driver.run_wave(plan, chunk_fn, state, dev_data, m0, finish_fn=finish_fn, wave=w,
                                             checkpoint_dir=checkpoint_dir,
                                             resume_from=None if found is None else found[1:], bar=bar,
                                             on_chunk=on_chunk, timing=timing, compaction=compaction)
            state = to_host(state)
            if checkpoint_dir is not None and (len(waves) > 1 or plan.checkpoint_every > 0):
                driver.save_finished_wave(checkpoint_dir, w, state, metrics)
        states.append(state)
        wave_metrics.append(metrics)
    if bar is not None:
        bar.close()
    length = max(m["train_loss"].shape[1] for m in wave_metrics)
    wave_metrics = [_pad_metrics(m, length) for m in wave_metrics]
    state = jax.tree.map(lambda *xs: np.concatenate(xs, 0)[:len(runs)], *states)
    metrics = {k: np.concatenate([m[k] for m in wave_metrics], 0)[:len(runs)] for k in wave_metrics[0]}
    timing.update({"total_s": time.perf_counter() - t0, "chunks": plan.num_chunks, "waves": len(waves),
                   "runs_per_wave": len(waves[0]), "intervals_per_chunk": n_int})
    timing.setdefault("first_chunk_incl_compile_s", 0.0)
    steps = np.arange(length) * plan.eval_every
    result = _result(config, prog, data, runs, state, metrics, steps, n_dev, task, timing)
    for fn in list(_LISTENERS):
        fn(result)
    return result


def train(config, seed: int, learning_rate: float, *, hooks=None, task=None, data=None, **hparams) -> SweepResult:
    """Train ONE run without vmap (the reference the sweep is tested against).

    Same per-run program, keys, target stop and chunk loop as ``sweep``; results have a leading
    run axis of size 1.
    """
    runs = make_grid([seed], [learning_rate], **hparams)
    data = load_data(config) if data is None else data
    prog, _ = build_program(config, data, task, hooks, list(hparams))
    num_intervals = int(config.steps) // int(config.eval_every)
    n_int = _chunk_intervals(num_intervals, int(config.chunk_evals))
    plan = driver.WavePlan(num_chunks=num_intervals // n_int, intervals_per_chunk=n_int,
                           eval_every=int(config.eval_every), checkpoint_every=0, targets=_targets(config))
    init_fn, eval_fn, chunk_fn, finish_fn = _programs(prog, n_int, False)
    dev_data = {k: jnp.asarray(v) for k, v in _host_data(data).items()}
    hp = {k: jnp.asarray(v[0]) for k, v in stack_hparams(runs).items()}
    state = init_fn(jnp.uint32(seed), hp, dev_data)
    state, m0 = eval_fn(state, dev_data, plan.targets)
    m0 = {k: np.asarray(v)[None, None] for k, v in jax.device_get(m0).items()}

    def one_run_chunk(s, d, t0, targets):  # metrics [interval] -> [1, interval] like the sweep's
        s, m = chunk_fn(s, d, t0, targets)
        return s, jax.tree.map(lambda v: v[None], m)

    def one_run_finish(s, d, targets):
        s, m = finish_fn(s, d, targets)
        return s, jax.tree.map(lambda v: v[None], m)

    state, metrics = driver.run_wave(plan, one_run_chunk, state, dev_data, m0, finish_fn=one_run_finish)
    host_state = jax.tree.map(lambda x: np.asarray(x)[None], jax.device_get(state))
    steps = np.arange(metrics["train_loss"].shape[1]) * plan.eval_every
    return _result(config, prog, data, runs, host_state, metrics, steps, 1, task, {})
