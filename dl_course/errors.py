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
================  ===========  =========================================================
"""

from __future__ import annotations

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
