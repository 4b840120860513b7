"""``sweep``: a whole grid of runs (seeds x learning rates x other scalars) as ONE vmapped program,
its run axis sharded over every device with a ``Mesh`` and ``NamedSharding``.

The per-run program (``dl_course.train.program``) is vmapped; hyperparameters enter as arrays,
so changing their values never recompiles. Compiled functions are cached on the config's static
part, the grid's keys and size, the task and hook objects, and the device mesh. The host drives
the run in chunks (one compiled call each) to report progress and to checkpoint for ``resume``.
Runs are padded to a multiple of the device count by repeating the last grid point; the padding
is dropped from the results. Multi-host: call ``jax.distributed.initialize()`` first; the mesh
then spans every process's devices and results are gathered with ``process_allgather``.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dl_course.models.conv import resolve_conv_impl
from dl_course.train import checkpoint as ckpt_lib
from dl_course.train.build import build_program, load_data
from dl_course.train.config import ConfigError
from dl_course.train.grid import make_grid, stack_hparams
from dl_course.train.program import evaluate, init_run, run_chunk

# Counts of traces (= compilations) of the sweep's jitted functions, for the no-recompile tests.
TRACE_COUNTS: collections.Counter = collections.Counter()
_CACHE: "collections.OrderedDict[Any, tuple]" = collections.OrderedDict()
_CACHE_SIZE = 16


@dataclasses.dataclass
class SweepResult:
    """Results of a sweep, one entry per grid point along the leading run axis.

    Attributes:
      params: stacked final parameters (numpy), leading axis = run.
      grid: list of dicts, one per run: ``seed``, ``learning_rate`` and the other grid keys.
      metrics: dict name -> ``[run, eval_point, ...]`` (train_loss, train_accuracy, test_loss,
        test_accuracy for classification, and every hook metric).
      steps: ``[eval_point]`` optimizer step of each evaluation (0, eval_every, ..., steps).
      diverged: ``[run]`` bool.
      state: the final stacked TrainState (numpy), incl. hook states in ``state.extras``.
      conventions: loss reduction, batching, eval mode and subsets, dtype, devices.
      timing: seconds for compilation + first chunk, and for the whole sweep.
    """

    params: Any
    grid: list
    metrics: dict
    steps: np.ndarray
    diverged: np.ndarray
    state: Any
    conventions: dict
    timing: dict

    def metric(self, name: str, point: int = -1) -> np.ndarray:
        """``metrics[name][:, point]``: one value per run at an evaluation point (default last)."""
        return self.metrics[name][:, point]


def _mesh() -> Mesh:
    return Mesh(np.asarray(jax.devices()), ("runs",))


def _static_key(config, grid_keys, num_runs, n_int, task, hooks, data_sig, mesh):
    static = {k: v for k, v in config.to_dict().items() if k not in ("seeds", "learning_rates")}
    return (json.dumps(static, sort_keys=True, default=str), tuple(grid_keys), num_runs, n_int,
            None if task is None else id(task), tuple((k, id(h)) for k, h in sorted((hooks or {}).items())),
            data_sig, tuple(d.id for d in mesh.devices.flat))


def _compiled(prog, n_int, shard_runs, replicated):
    def init_all(seeds, hparams, data):
        TRACE_COUNTS["init"] += 1
        return jax.vmap(functools.partial(init_run, prog), in_axes=(0, 0, None))(seeds, hparams, data)

    def eval_all(state, data):
        TRACE_COUNTS["eval"] += 1
        return jax.vmap(functools.partial(evaluate, prog), in_axes=(0, None))(state, data)

    def chunk_all(state, data, t0):
        TRACE_COUNTS["chunk"] += 1
        return jax.vmap(functools.partial(run_chunk, prog, n_int), in_axes=(0, None, None))(state, data, t0)

    return (jax.jit(init_all, out_shardings=shard_runs),
            jax.jit(eval_all, out_shardings=(shard_runs, shard_runs)),
            jax.jit(chunk_all, out_shardings=(shard_runs, shard_runs), donate_argnums=0))


def _to_host(tree):
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def _chunk_intervals(num_intervals: int, requested: int) -> int:
    target = requested if requested > 0 else max(1, num_intervals // 10)
    for d in range(min(target, num_intervals), 0, -1):
        if num_intervals % d == 0:
            return d
    return 1


def conventions(config, prog, data, num_devices: int, engine_task: bool = True) -> dict:
    """The conventions recorded with every result of this sweep (``engine_task``: the engine
    built the supervised task, so it applied ``config.conv_impl``; a given Task does its own)."""
    return {
        "loss": config.loss,
        "loss_reduction": "mean over examples",
        "batching": ("full-batch gradient descent" if prog.batch_size == 0 else
                     f"minibatches of {prog.batch_size} from per-epoch permutations keyed by (seed, epoch); "
                     "last partial batch dropped"),
        "evaluation_mode": "eval (batch-norm running statistics, no dropout)",
        "train_metrics_examples": prog.num_eval_train,
        "test_metrics_examples": prog.num_eval_test,
        "dataset": data.name,
        "data_info": {k: v for k, v in data.info.items() if k != "permutation"},
        "dtype": config.get("dtype", "float32"),
        "seeds": "root key PRNGKey(seed) per run; named streams init/data/dropout/labels/hooks by fold_in",
        "divergence": "non-finite loss/grad/params: run frozen at last finite state, flagged diverged",
        "devices": f"{num_devices} x {jax.devices()[0].device_kind} ({jax.default_backend()})",
        "conv_impl": (resolve_conv_impl(config.get("conv_impl", "auto")) if engine_task
                      else "chosen by the Task passed to the engine"),
    }


def sweep(config, seeds=None, learning_rates=None, *, hooks: dict | None = None, task=None, data=None,
          checkpoint_dir=None, resume: bool = False, progress: bool = False, stop_after_chunks: int | None = None,
          **grid) -> SweepResult:
    """Train every grid point of ``seeds x learning_rates x grid`` in one vmapped, jitted program.

    Args:
      config: a ``ConfigDict`` (see ``dl_course.train.config.default_config``).
      seeds, learning_rates: grid axes (default: ``config.seeds``, ``config.learning_rates``).
      hooks: dict name -> ``Hook`` (measurements / training-time state), vmapped with the runs.
      task: a ``Task`` replacing the supervised one built from the config (e.g. a score model).
      data: a ``Dataset`` replacing ``dl_course.data.load(config.dataset, ...)``.
      checkpoint_dir: where to write orbax checkpoints every ``config.checkpoint_every`` chunks.
      resume: continue from the newest checkpoint in ``checkpoint_dir`` if there is one.
      progress: show a tqdm progress bar over chunks.
      stop_after_chunks: stop early after this many chunks (used to test interruption).
      **grid: further axes, name -> list of values (optimizer hyperparameters such as
        ``momentum``, ``weight_decay``; engine ones ``random_label_fraction``, ``l2``).
    """
    seeds = list(config.seeds) if seeds is None else list(np.atleast_1d(seeds).tolist())
    learning_rates = list(config.learning_rates) if learning_rates is None else list(np.atleast_1d(learning_rates).tolist())
    runs = make_grid(seeds, learning_rates, **grid)
    data = load_data(config) if data is None else data
    prog, task_used = build_program(config, data, task, hooks, list(grid))
    if resume and checkpoint_dir is None:
        raise ConfigError("resume needs a checkpoint directory")

    mesh = _mesh()
    n_dev = mesh.devices.size
    num_runs = len(runs)
    padded = runs + [runs[-1]] * (-num_runs % n_dev)
    shard_runs = NamedSharding(mesh, PartitionSpec("runs"))
    replicated = NamedSharding(mesh, PartitionSpec())
    num_intervals = int(config.steps) // int(config.eval_every)
    n_int = _chunk_intervals(num_intervals, int(config.chunk_evals))
    n_chunks = num_intervals // n_int

    host_data = {"x_train": data.x_train, "y_train": data.y_train, "x_test": data.x_test, "y_test": data.y_test}
    data_sig = tuple((k, v.shape, str(v.dtype)) for k, v in host_data.items())
    key = _static_key(config, list(grid), len(padded), n_int, task, hooks, data_sig, mesh)
    if key not in _CACHE:
        _CACHE[key] = _compiled(prog, n_int, shard_runs, replicated)
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    init_fn, eval_fn, chunk_fn = _CACHE[key]

    def put(x, sharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    dev_data = {k: put(v, replicated) for k, v in host_data.items()}
    seeds_arr = put(np.asarray([r["seed"] for r in padded], np.uint32), shard_runs)
    hparams = {k: put(v, shard_runs) for k, v in stack_hparams(padded).items()}

    t0 = time.perf_counter()
    state = init_fn(seeds_arr, hparams, dev_data)
    state, m0 = eval_fn(state, dev_data)
    metrics = {k: [np.asarray(_to_host(v))[:, None]] for k, v in m0.items()}
    done = 0
    if resume and ckpt_lib.latest(checkpoint_dir) is not None:
        done, state, restored = ckpt_lib.restore(ckpt_lib.latest(checkpoint_dir), state, list(metrics))
        metrics = {k: [v] for k, v in restored.items()}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_chunks, initial=done, desc="sweep", unit="chunk", leave=False)
    t_first = None
    every_ckpt = int(config.checkpoint_every)
    steps_per_chunk = n_int * int(config.eval_every)
    for c in range(done, n_chunks):
        state, m = chunk_fn(state, dev_data, np.int32(c * steps_per_chunk))
        m = _to_host(m)
        for k, v in m.items():
            metrics[k].append(np.asarray(v))
        if t_first is None:
            t_first = time.perf_counter() - t0
        if bar is not None:
            bar.update(1)
        if checkpoint_dir is not None and every_ckpt > 0 and ((c + 1) % every_ckpt == 0 or c + 1 == n_chunks):
            ckpt_lib.save(checkpoint_dir, c + 1, state, {k: np.concatenate(v, 1) for k, v in metrics.items()})
        if stop_after_chunks is not None and c + 1 - done >= stop_after_chunks and c + 1 < n_chunks:
            if bar is not None:
                bar.close()
            raise KeyboardInterrupt(f"stopped after {c + 1} chunks (stop_after_chunks)")
    if bar is not None:
        bar.close()
    host_state = jax.tree.map(lambda x: np.asarray(x)[:num_runs], _to_host(state))
    total = time.perf_counter() - t0
    steps = np.arange(num_intervals + 1) * int(config.eval_every)
    return SweepResult(
        params=host_state.params, grid=runs,
        metrics={k: np.concatenate(v, 1)[:num_runs] for k, v in metrics.items()},
        steps=steps, diverged=np.asarray(host_state.diverged, bool), state=host_state,
        conventions=conventions(config, prog, data, n_dev, task is None),
        timing={"first_chunk_incl_compile_s": t_first or 0.0, "total_s": total, "chunks": n_chunks,
                "intervals_per_chunk": n_int})


def train(config, seed: int, learning_rate: float, *, hooks=None, task=None, data=None, **hparams) -> SweepResult:
    """Train ONE run without vmap (the reference the sweep is tested against).

    Same per-run program and keys as ``sweep``; results have a leading run axis of size 1.
    """
    runs = make_grid([seed], [learning_rate], **hparams)
    data = load_data(config) if data is None else data
    prog, _ = build_program(config, data, task, hooks, list(hparams))
    num_intervals = int(config.steps) // int(config.eval_every)
    n_int = _chunk_intervals(num_intervals, int(config.chunk_evals))
    dev_data = {"x_train": jnp.asarray(data.x_train), "y_train": jnp.asarray(data.y_train),
                "x_test": jnp.asarray(data.x_test), "y_test": jnp.asarray(data.y_test)}
    hp = {k: jnp.asarray(v[0]) for k, v in stack_hparams(runs).items()}
    state = jax.jit(functools.partial(init_run, prog))(jnp.uint32(seed), hp, dev_data)
    state, m0 = jax.jit(functools.partial(evaluate, prog))(state, dev_data)
    chunk = jax.jit(functools.partial(run_chunk, prog, n_int))
    metrics = {k: [np.asarray(v)[None]] for k, v in m0.items()}
    for c in range(num_intervals // n_int):
        state, m = chunk(state, dev_data, np.int32(c * n_int * int(config.eval_every)))
        for k, v in m.items():
            metrics[k].append(np.asarray(v))
    host_state = jax.tree.map(lambda x: np.asarray(x)[None], jax.device_get(state))
    return SweepResult(params=host_state.params, grid=runs,
                       metrics={k: np.concatenate(v, 0)[None] for k, v in metrics.items()},
                       steps=np.arange(num_intervals + 1) * int(config.eval_every),
                       diverged=np.asarray(host_state.diverged, bool), state=host_state,
                       conventions=conventions(config, prog, data, 1, task is None), timing={})
