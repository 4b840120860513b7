"""Orbax checkpoints of a sweep's state between chunks, for ``--resume``.

A checkpoint holds the leaves of the (stacked) TrainState, the metrics gathered so far and the
number of finished chunks. Orbax writes to a temporary directory and renames it when complete, so
an interrupted save never leaves a checkpoint that ``latest`` would pick up.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np


def _checkpointer():
    import orbax.checkpoint as ocp

    return ocp.StandardCheckpointer()


def save(directory: str | Path, chunks_done: int, state, metrics: dict[str, np.ndarray], keep: int = 2) -> Path:
    """Save checkpoint ``chunk_<chunks_done>`` and delete all but the ``keep`` newest."""
    directory = Path(directory).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"chunk_{chunks_done:06d}"
    tree = {"leaves": {str(i): x for i, x in enumerate(jax.tree.leaves(state))},
            "metrics": {k: np.asarray(v) for k, v in metrics.items()},
            "chunks_done": np.asarray(chunks_done)}
    ckpt = _checkpointer()
    ckpt.save(path, tree)
    ckpt.wait_until_finished()
    for old in sorted(directory.glob("chunk_*"))[:-keep]:
        if old.is_dir() and not old.name.endswith("tmp"):
            import shutil

            shutil.rmtree(old, ignore_errors=True)
    return path


def latest(directory: str | Path) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None."""
    directory = Path(directory)
    done = [p for p in sorted(directory.glob("chunk_*")) if p.is_dir() and p.name[6:].isdigit()]
    return done[-1] if done else None


def restore(path: str | Path, state_like, metric_names: list[str]):
    """Restore ``(chunks_done, state, metrics)``; ``state_like`` gives structure, shapes and shardings."""
    import orbax.checkpoint as ocp

    leaves, treedef = jax.tree.flatten(state_like)
    abstract = {"leaves": {str(i): ocp.utils.to_shape_dtype_struct(x) for i, x in enumerate(leaves)}}
    ckpt = _checkpointer()
    meta = ckpt.metadata(Path(path).absolute())
    tree_meta = getattr(meta, "item_metadata", meta)
    tree_meta = getattr(tree_meta, "tree", tree_meta)
    abstract["metrics"] = {k: jax.ShapeDtypeStruct(tuple(v.shape), v.dtype) for k, v in tree_meta["metrics"].items()}
    abstract["chunks_done"] = jax.ShapeDtypeStruct((), np.asarray(0).dtype)
    tree = ckpt.restore(Path(path).absolute(), abstract)
    state = jax.tree.unflatten(treedef, [tree["leaves"][str(i)] for i in range(len(leaves))])
    metrics = {k: np.asarray(tree["metrics"][k]) for k in metric_names if k in tree["metrics"]}
    return int(tree["chunks_done"]), state, metrics
