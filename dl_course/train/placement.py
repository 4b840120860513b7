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
