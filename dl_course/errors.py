"""The exceptions every layer raises and the CLI turns into exit codes: the ground floor of the
package. This module imports nothing of ``dl_course`` (and nothing outside the standard library),
so the lowest layers (``rundir``, ``configs``, data sets) can raise them without loading the
engine or JAX.

================  ===========  =========================================================
exception         exit code    meaning
================  ===========  =========================================================
ConfigError       2            bad user input (names, values, shapes), found before anything
                               is compiled or written; one line naming the problem and the
                               valid choices
Preempted         75           SIGTERM / SIGINT: the current chunk finished, a checkpoint was
                               written (``--resume`` continues)
WriteError        1            the environment refused a write (disk full, quota, read-only or
                               unwritable directory): one line naming the path and the bytes
                               the write needed; nothing half-written is left behind
================  ===========  =========================================================
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal


class ConfigError(ValueError):
    """Bad user input (names, values, shapes); the CLI prints it as one line and exits with 2.

    Also importable as ``dl_course.train.config.ConfigError`` and ``dl_course.train.ConfigError``
    (the same class)."""


class Preempted(Exception):
    """The sweep stopped on a signal after writing a checkpoint (``checkpoint`` is its path, or
    None when no checkpoint directory was given)."""

    def __init__(self, signum: int, checkpoint):
        self.signum = signum
        self.checkpoint = checkpoint
        name = signal.Signals(signum).name
        where = f"checkpoint written to {checkpoint}" if checkpoint else "no checkpoint directory: progress lost"
        super().__init__(f"stopped by {name} after a complete chunk; {where}")


class WriteError(OSError):
    """A write the environment refused: ``path``, ``bytes_needed`` (None when not known), the free
    bytes of its filesystem (``bytes_free``, None when not known) and the operating system's
    reason (``errno`` / ``strerror`` as in any ``OSError``)."""

    def __init__(self, path, bytes_needed: int | None, reason: OSError | None = None,
                 bytes_free: int | None = None, code: int | None = None):
        code = code or getattr(reason, "errno", None) or errno.EIO
        text = getattr(reason, "strerror", None) or os.strerror(code)
        super().__init__(code, text)
        self.path = self.filename = str(path)
        self.bytes_needed, self.bytes_free = bytes_needed, bytes_free

    def __str__(self) -> str:
        out = f"cannot write {self.path} ({self.strerror})"
        if self.bytes_needed is not None:
            out += f": the write needs {self.bytes_needed:,} bytes"
            if self.bytes_free is not None:
                out += f", {self.bytes_free:,} are free there"
        return out


# errno -> how storage libraries word it (tensorstore's status codes under orbax, or the OS text)
WRITE_FAILURES = {errno.ENOSPC: ("RESOURCE_EXHAUSTED", "No space left"), errno.EDQUOT: ("Disk quota exceeded",),
                  errno.EROFS: ("Read-only file system",), errno.EACCES: ("PERMISSION_DENIED", "Permission denied")}


def write_failure_errno(e: BaseException) -> int | None:
    """The errno of a refused write (full disk, quota, read-only filesystem, permission), from an
    ``OSError`` or from the text of a storage library's error; None for any other failure."""
    if isinstance(e, OSError) and e.errno == errno.EPERM:
        return errno.EACCES
    if isinstance(e, OSError) and e.errno in WRITE_FAILURES:
        return e.errno
    text = str(e)
    return next((code for code, markers in WRITE_FAILURES.items() if any(m in text for m in markers)), None)


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.CRITICAL):
    """Drop the messages of logger ``name`` below ``level`` while active (its level restored after):
    a library that logs each step of a failure before raising (absl's warnings of tfds, orbax's
    per-thread tracebacks) would otherwise precede the one line that reports it."""
    log = logging.getLogger(name)
    old = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(old)
