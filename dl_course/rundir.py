"""A run's result directory: one writer at a time, written aside, appearing whole; the atomic
file writers it uses.

``RunDir(final)`` writes into the staging directory ``<final>.partial`` (which also holds the
checkpoints for ``--resume``) while holding an exclusive advisory lock (``fcntl.flock`` on
``<parent>/.<name>.lock``; the OS releases it when the process dies). ``commit()`` writes
``complete.json`` (every file with its size and sha256), drops the checkpoints and makes the
staging directory the result in ONE rename, so a reader never sees a half-written result; a
directory without ``complete.json`` is unfinished (:func:`status`). A finished result is replaced
only with ``overwrite=True``, by an atomic exchange of the two directories (Linux
``renameat2(RENAME_EXCHANGE)``; elsewhere two renames); results kept inside it are carried over:
``runs/`` (the timestamped runs of ``results/<study>/runs/``) and any finished result directory
(e.g. the reference run of a variant, ``results/uncertainty/digits``).

Every file is written atomically (:func:`atomic_write_bytes`: a temporary file in the same
directory, then ``os.replace``): :func:`write_json`, :func:`write_npz`, :func:`save_figure`.
Only process 0 of a multi-process run writes (``primary``); the others' writes are no-ops.

This module imports nothing of the package but :mod:`dl_course.errors`: reading or writing a run
directory never loads the engine or JAX (what a run records, summaries and conventions, is
:mod:`dl_course.results`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as _dt
import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dl_course.errors import ConfigError, WriteError, write_failure_errno

COMPLETE = "complete.json"
KEEP_INSIDE = ("runs",)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if np.isfinite(v) else None  # JSON has no inf/nan: recorded as null
    if isinstance(x, np.ndarray) or hasattr(x, "__array__"):
        return _jsonable(np.asarray(x).tolist())
    return x


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the filesystem holding ``path`` (its nearest existing ancestor); None if unknown."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def refused(path: str | Path, bytes_needed: int | None, e: BaseException) -> WriteError | None:
    """``e`` as a one-line :class:`WriteError` naming ``path`` and the bytes the write needed, when
    it is a refused write (full disk, quota, read-only, permission); None for any other error."""
    if isinstance(e, WriteError):
        return e
    code = write_failure_errno(e)
    if code is None:
        return None
    return WriteError(path, bytes_needed, e if isinstance(e, OSError) else None, free_bytes(path), code)


def _write_fd(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``. A refused write (full
    disk, unwritable directory) raises :class:`~dl_course.errors.WriteError` and leaves neither
    the temporary file nor a partial ``path``."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        _write_fd(fd, data)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        error = refused(path, len(data), e)
        if error is None:
            raise
        raise error from None


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (numpy scalars/arrays converted, inf/nan -> null)."""
    atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n").encode())


def write_npz(path: Path, **arrays) -> None:
    """Atomically write a compressed ``.npz``."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def save_figure(path: Path, fig, dpi: int = 120) -> None:
    """Atomically save a matplotlib figure as PNG and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def default_workdir(study: str, root: str | Path = "results") -> Path:
    """``results/<study>/runs/<UTC timestamp>``."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    return Path(root) / study / "runs" / stamp


def status(path: str | Path) -> str:
    """``"finished"`` (``complete.json``, or a legacy ``summary.json``), ``"interrupted"``
    (``<path>.partial`` holds checkpoints), ``"incomplete"`` or ``"absent"``."""
    path = Path(path)
    if (path / COMPLETE).is_file():
        return "finished"
    staging = path.with_name(path.name + ".partial")
    if (staging / "checkpoints").is_dir() and any((staging / "checkpoints").iterdir()):
        return "interrupted"
    if (path / "summary.json").is_file():
        return "finished"  # written before complete.json existed
    return "incomplete" if path.exists() else "absent"


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange)
    return rc == 0


class RunDir:
    """A run being written: files go to ``staging`` and become ``final`` on ``commit()``.

    Attributes:
      final: the result directory. staging: ``<final>.partial``.
      checkpoint_dir: ``<staging>/checkpoints`` (orbax checkpoints for ``--resume``).
    """

    def __init__(self, final: str | Path, resume: bool = False, overwrite: bool = False, primary: bool = True):
        self.final = Path(final)
        self.resume = resume
        self.overwrite = overwrite
        self.primary = primary
        self.staging = self.final.with_name(self.final.name + ".partial")
        self.checkpoint_dir = self.staging / "checkpoints"
        self.lock_path = self.final.with_name(f".{self.final.name}.lock")
        self._lock_fd: int | None = None

    # -- ownership ---------------------------------------------------------------------------
    def acquire(self) -> RunDir:
        """Take the directory's lock and check that this run may write it (``ConfigError`` if not;
        ``WriteError`` when the workdir cannot be written at all)."""
        if not self.primary:
            return self
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            fd = self._lock()
        except OSError as e:  # an unwritable or read-only workdir: one line naming it
            error = refused(self.lock_path, None, e)
            if error is None:
                raise
            raise error from None
        self._lock_fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            self._check_writable()
        except BaseException:
            self.release()
            raise
        return self

    def _lock(self) -> int:
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ConfigError(f"{self.final} is being written by another run; wait for it or give another "
                                  "--workdir")
            try:  # the file may have been unlinked by its previous owner between open and flock
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)

    def _check_writable(self) -> None:
        state = status(self.final)
        if state == "finished" and not self.overwrite and not self.resume:
            raise ConfigError(f"{self.final} already holds a finished run; give --overwrite to replace it "
                              "or another --workdir")
        if self.final.exists() and state != "finished":
            other = sorted(p.name for p in self.final.iterdir() if p.name not in KEEP_INSIDE)
            if other:
                raise ConfigError(f"{self.final} exists and is not a finished dl-course result "
                                  f"({', '.join(other[:4])}); "
                                  "give another --workdir")
        interrupted = self.checkpoint_dir.is_dir() and any(self.checkpoint_dir.iterdir())
        if interrupted and not self.resume and not self.overwrite:
            raise ConfigError(f"{self.staging} holds an interrupted run; --resume continues it, "
                              "--overwrite discards it")
        if self.overwrite and not self.resume and self.staging.exists():
            shutil.rmtree(self.staging)

    def release(self) -> None:
        if self._lock_fd is not None:
            try:
                os.unlink(self.lock_path)
            except FileNotFoundError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- writing -----------------------------------------------------------------------------
    def open(self) -> RunDir:
        if self.primary:
            try:
                self.staging.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                error = refused(self.staging, None, e)
                if error is None:
                    raise
                raise error from None
        return self

    def path(self, name: str) -> Path:
        self.open()  # created lazily: a run that fails validation leaves no directory behind
        return self.staging / name

    def json(self, name: str, obj) -> None:
        if self.primary:
            write_json(self.path(name), obj)

    def npz(self, name: str, **arrays) -> None:
        if self.primary:
            write_npz(self.path(name), **arrays)

    def figure(self, name: str, fig) -> None:
        import matplotlib.pyplot as plt

        if not self.primary:
            plt.close(fig)
            return
        save_figure(self.path(name), fig)

    # -- finishing ---------------------------------------------------------------------------
    def commit(self) -> Path:
        """Make the staging directory the result in one rename (see the module docstring)."""
        if not self.primary:
            return self.final
        self.open()
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        files = {}
        for p in sorted(self.staging.rglob("*")):
            if p.is_file() and p.name != COMPLETE:
                files[str(p.relative_to(self.staging))] = {
                    "bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        write_json(self.staging / COMPLETE, {"finished_utc": _dt.datetime.now(_dt.UTC).isoformat(
            timespec="seconds"), "files": files})
        if not self.final.exists():
            os.rename(self.staging, self.final)
        else:
            if not _exchange(self.staging, self.final):
                aside = self.final.with_name(f"{self.final.name}.old-{os.getpid()}")
                os.rename(self.final, aside)
                os.rename(self.staging, self.final)
                os.rename(aside, self.staging)
            for sub in sorted(self.staging.iterdir()):  # the old directory is now at `staging`
                # results kept inside it (runs/, the reference run of a variant) move across
                carried = sub.is_dir() and (sub.name in KEEP_INSIDE or status(sub) == "finished")
                if carried and not (self.final / sub.name).exists():
                    os.rename(sub, self.final / sub.name)
            shutil.rmtree(self.staging)
        self.release()
        return self.final

    def resumable(self) -> bool:
        """Whether the staging directory holds a complete checkpoint (``wave_*/chunk_*`` or
        ``wave_*/done``, the layout of ``dl_course.train.checkpoint``; orbax's unfinished
        ``*.orbax-checkpoint-tmp*`` directories do not count)."""
        return any(p.is_dir() and ".orbax-checkpoint-tmp" not in p.name
                   for p in self.checkpoint_dir.glob("wave_*/*"))

    def abort(self, keep_checkpoints: bool) -> None:
        """Remove the staging directory unless it holds checkpoints worth resuming from."""
        if self.primary and not (keep_checkpoints and self.resumable()):
            shutil.rmtree(self.staging, ignore_errors=True)
            self.release()
            parent = self.final.parent
            if parent.name == "runs" and parent.exists() and not any(parent.iterdir()):
                parent.rmdir()
        self.release()


def verify(path: str | Path) -> list[str]:
    """Problems of a finished result directory: files listed in ``complete.json`` that are
    missing or whose sha256 differs (empty list: intact)."""
    path = Path(path)
    record = json.loads((path / COMPLETE).read_text())
    problems = []
    for name, info in record["files"].items():
        f = path / name
        if not f.is_file():
            problems.append(f"{name}: missing")
        elif hashlib.sha256(f.read_bytes()).hexdigest() != info["sha256"]:
            problems.append(f"{name}: changed since the run finished")
    return problems
