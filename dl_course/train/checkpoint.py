"""Orbax checkpoints of a sweep between chunks, for ``--resume``; the fingerprint that a resume
must match; the fallback over damaged checkpoints.

Layout of a checkpoint directory::

    fingerprint.json          what determines the computation (written before the first save)
    wave_000/chunk_000004/    orbax: TrainState leaves, metrics so far, chunks done
    wave_000/done/            a finished wave: final state and all its metrics
    wave_001/chunk_000002/

Orbax writes to a temporary directory and renames it when complete, so an interrupted save never
leaves a checkpoint that :func:`latest` would pick up; a checkpoint damaged afterwards (a
truncated or missing file) fails to restore, is reported in one warning line and skipped for the
previous one (:func:`restore_newest`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import sys
from pathlib import Path

import jax
import numpy as np

from dl_course.errors import ConfigError, WriteError, quiet_logger
from dl_course.rundir import free_bytes, refused, write_json

FINGERPRINT = "fingerprint.json"
METADATA_BYTES = 64 * 1024  # orbax's metadata files and OCDBT manifests, an upper estimate for small trees


def _checkpointer():
    import orbax.checkpoint as ocp

    return ocp.StandardCheckpointer()


def wave_dir(directory: str | Path, wave: int) -> Path:
    return Path(directory).absolute() / f"wave_{wave:03d}"


def tree_bytes(tree) -> int:
    """Bytes of the arrays of ``tree`` (global shapes): what a checkpoint of it writes, before
    orbax's metadata (a few kB)."""
    return int(sum(np.prod(np.shape(x), dtype=np.int64) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))


def _remove_temporaries(directory: Path, name: str) -> None:
    """Orbax's unfinished ``<name>.orbax-checkpoint-tmp*`` directories of a failed save."""
    for tmp in directory.glob(f"{name}.orbax-checkpoint-tmp*"):
        shutil.rmtree(tmp, ignore_errors=True)


def save(directory: str | Path, name: str, state, metrics: dict[str, np.ndarray], chunks_done: int,
         keep: int = 2) -> Path:
    """Save ``directory/name`` and delete all but the ``keep`` newest ``chunk_*`` siblings.

    A refused write (a full disk, a quota, an unwritable directory) raises a one-line
    ``WriteError`` naming the checkpoint and the bytes it needs, checked against the free space
    before orbax starts; a failure during the write removes orbax's temporary directory, so the
    previous complete checkpoints stay the newest (``--resume`` continues from them).
    """
    directory = Path(directory).absolute()
    path = directory / name
    tree = {"leaves": {str(i): x for i, x in enumerate(jax.tree.leaves(state))},
            "metrics": {k: np.asarray(v) for k, v in metrics.items()},
            "chunks_done": np.asarray(chunks_done)}
    needed = tree_bytes(tree) + METADATA_BYTES
    free = free_bytes(directory)
    if free is not None and free < needed:
        raise WriteError(path, needed, bytes_free=free, code=errno.ENOSPC)
    ckpt, failure = _checkpointer(), None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if path.exists() and jax.process_index() == 0:
            shutil.rmtree(path)
        with quiet_logger("absl"):  # orbax logs each failed write thread's traceback; the error says it once
            ckpt.save(path, tree)
            ckpt.wait_until_finished()
    except Exception as e:
        failure = e
    finally:  # its background threads stop here, before anything is cleaned up
        with contextlib.suppress(Exception), quiet_logger("absl"):
            ckpt.close()
    if failure is not None:
        error = refused(path, needed, failure)
        if error is None:
            raise failure
        if jax.process_index() == 0:
            _remove_temporaries(directory, name)
        raise error from None
    if jax.process_index() == 0:  # every process saved its shards; one of them prunes
        chunks = _chunks(directory)
        for old in (chunks[:-keep] if keep else chunks):
            shutil.rmtree(old, ignore_errors=True)
    return path


def _chunks(directory: Path) -> list[Path]:
    return [p for p in sorted(Path(directory).glob("chunk_*")) if p.is_dir() and p.name[6:].isdigit()]


def latest(directory: str | Path) -> Path | None:
    """The newest complete ``chunk_*`` checkpoint in ``directory``, or None."""
    found = _chunks(Path(directory))
    return found[-1] if found else None


def restore(path: str | Path, state_like):
    """``(chunks_done, state, metrics)`` from ``path``; ``state_like`` gives the structure,
    shapes and shardings. Raises on a damaged or mismatching checkpoint."""
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
    return int(tree["chunks_done"]), state, {k: np.asarray(v) for k, v in tree["metrics"].items()}


def restore_newest(directory: str | Path, state_like, names=("done",)):
    """Restore the finished-wave checkpoint (``done``) if valid, else the newest valid ``chunk_*``.

    A checkpoint that fails to restore is reported in one warning line on stderr and skipped.
    Returns ``(finished, chunks_done, state, metrics)`` or None when there is nothing to resume;
    raises ``ConfigError`` when checkpoints exist but none is valid (nothing is deleted).
    """
    directory = Path(directory)
    candidates = [directory / n for n in names if (directory / n).is_dir()] + _chunks(directory)[::-1]
    if not candidates:
        return None
    for path in candidates:
        try:
            chunks_done, state, metrics = restore(path, state_like)
        except Exception as e:  # orbax/tensorstore raise assorted errors on damaged files
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            print(f"warning: checkpoint {path} cannot be restored ({type(e).__name__}: {reason}); trying an older one",
                  file=sys.stderr)
            continue
        return path.name == "done", chunks_done, state, metrics
    raise ConfigError(f"no valid checkpoint in {directory} ({len(candidates)} found, all damaged); "
                      "nothing was deleted: remove the directory to start afresh")


def check_fingerprint(directory: str | Path, fingerprint: dict, resume: bool) -> None:
    """Write ``fingerprint`` into ``directory`` (a fresh start: earlier checkpoints there are
    removed), or, when resuming, check that it equals the one stored there: a difference is a
    ``ConfigError`` naming each differing key (old -> new)."""
    directory = Path(directory)
    path = directory / FINGERPRINT
    new = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
    if resume and path.exists():
        old = json.loads(path.read_text())
        diff = _differences(old, new)
        if diff:
            shown = "; ".join(f"{k}: {o} -> {n}" for k, o, n in diff[:6])
            more = f" (+{len(diff) - 6} more)" if len(diff) > 6 else ""
            raise ConfigError(f"cannot resume: the checkpoints in {directory} were made by a different computation: "
                              f"{shown}{more}; resume with the original settings or start a new workdir")
        return
    if jax.process_index() == 0:  # a fresh start: checkpoints of an earlier computation must not survive it
        for old_wave in sorted(directory.glob("wave_*")):
            shutil.rmtree(old_wave, ignore_errors=True)
        write_json(path, new)


def _differences(old, new, prefix="") -> list[tuple[str, object, object]]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _differences(old.get(k, "<absent>"), new.get(k, "<absent>"), f"{prefix}{k}.")
        return out
    if old != new:
        def short(v):
            text = json.dumps(v, default=str)
            return text if len(text) <= 60 else text[:57] + "..."

        return [(prefix[:-1], short(old), short(new))]
    return []
