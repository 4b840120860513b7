"""Where a sweep's arrays live: the run axis sharded over every device of every process.

One ``Mesh`` with a single axis ``"runs"`` spans ``jax.devices()`` (all processes' devices after
``jax.distributed.initialize()``); per-run arrays are ``NamedSharding(mesh, P("runs"))``, the data
are replicated. Host arrays enter through ``jax.make_array_from_callback`` (each process supplies
its own shards) and leave through ``process_allgather`` when there is more than one process.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def run_mesh() -> Mesh:
    """The mesh of every device, one axis ``"runs"``."""
    return Mesh(np.asarray(jax.devices()), ("runs",))


def shardings(mesh: Mesh) -> tuple[NamedSharding, NamedSharding]:
    """``(per-run, replicated)`` shardings on ``mesh``."""
    return NamedSharding(mesh, PartitionSpec("runs")), NamedSharding(mesh, PartitionSpec())


def put(x, sharding) -> jax.Array:
    """A global array with ``sharding`` from the host array ``x`` (the same on every process)."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def to_host(tree):
    """Numpy copies of every leaf, gathered from all processes when there are several."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, jax.device_get(tree))


def any_process(flag: bool) -> bool:
    """True on every process when ``flag`` is True on any (a no-op with one process)."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.asarray([flag]))))


def over_run_devices(fn, num_run_args: int, mesh: Mesh | None = None):
    """``jit`` of ``fn(*run_args, *shared_args)`` — a function already vmapped over the leading run
    axis of its first ``num_run_args`` arguments — with that axis split over every device of
    ``mesh`` by ``shard_map``: each device runs its share of the runs as its own program, with no
    communication. The run count must be a multiple of the device count; outputs keep the leading
    run axis. Not for functions with host callbacks on CPU (``dl_course.linalg``'s decompositions,
    hence the measure suites): with every XLA:CPU thread inside a callback, the conversion of a
    callback's arguments can wait for a thread that never frees (seen: a hang at 0% CPU)."""
    mesh = run_mesh() if mesh is None else mesh

    def wrapped(*args):
        specs = tuple(PartitionSpec("runs") if i < num_run_args else PartitionSpec() for i in range(len(args)))
        return jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=PartitionSpec("runs"), check_vma=False)(*args)

    return jax.jit(wrapped)
