"""Compaction: runs that stopped leave the vmapped program instead of idling in it.

A vmapped program computes every run at every step, frozen or not (a frozen run's update is
computed and then discarded by a select). When runs stop at different times — the exact target
stop of a grid whose runs need 300 to 6000 steps — most of a wave's late steps are spent on frozen
runs: on the 3^5 grid of ``generalization_measures`` 57% of the run-steps were. Step time is linear
in the number of runs on CPU (108 / 27 / 4 runs of a 64-wide MLP: 8.1 / 1.9 / 0.25 s per 1000
steps), so between chunks the host gathers the runs still active into a smaller batch and the next
chunks run a program of that size.

Sizes are powers of two times the device count (at most ``log2(runs)`` extra compilations per
program shape, each cached), and a batch is compacted only when the smaller size is at most half
of the current one and the time it can save — the remaining chunks at the measured chunk time,
scaled by the fraction of slots removed — exceeds ``PAYBACK`` times the measured compilation time
(zero for a size already compiled). Padding slots repeat a frozen run (it stays frozen; its slots are ignored).
The full-size state is kept on the host; compacted runs are written back into it before a
checkpoint and at the end of the wave, so checkpoints, the exact stop's replay and the results see
the whole wave. A frozen run's metrics after it left the batch repeat its last evaluation, as the
evaluations of a frozen state would; a run's computation is the same per-run program either way
(results equal to float32 round-off: XLA may block a matmul of another batch size differently).
"""

from __future__ import annotations

import jax
import numpy as np

from dl_course.train.placement import to_host

#: Compact only when the saving it can bring exceeds this multiple of a compilation's time (the
#: saving is an upper bound: runs may stop before the last chunk).
PAYBACK = 2.0


def bucket(num_active: int, multiple: int) -> int:
    """The batch size for ``num_active`` runs: the next power of two times ``multiple`` (>= 1 slot)."""
    slots = max(1, -(-int(num_active) // multiple))
    return multiple * (1 << (slots - 1).bit_length())


def active_mask(status: dict) -> np.ndarray:
    """Runs still training (not diverged, not stopped at their target, not pending)."""
    return ~(np.asarray(status["diverged"]) | (np.asarray(status["stopped_at"]) >= 0) | np.asarray(status["pending"]))


class Compactor:
    """Bookkeeping of a compacted wave: which full-wave runs the current batch holds.

    ``index[j]`` is the full-wave run in slot ``j`` of the current batch (the first ``num_real``
    slots; the rest are padding). ``full`` is the host copy of the whole wave's state, current
    for the runs not in the batch.
    """

    def __init__(self, size: int, multiple: int):
        self.size = size
        self.multiple = multiple
        self.index = np.arange(size)
        self.num_real = size
        self.full = None
        self.compactions: list[int] = []  # the batch sizes used, in order

    @property
    def compacted(self) -> bool:
        return self.full is not None

    def merged(self, state, host=None):
        """The whole wave's state on the host (the batch's real slots written back); ``host``: the
        batch's state already copied to the host."""
        host = to_host(state) if host is None else host
        if self.full is None:
            return host
        idx, n = self.index[:self.num_real], self.num_real
        return jax.tree.map(lambda f, b: _scatter(f, idx, b[:n]), self.full, host)

    def expand(self, metrics: dict, previous: dict) -> dict:
        """Chunk ``metrics [slot, interval]`` as ``[run, interval]`` of the whole wave: runs not in
        the batch repeat their last value from ``previous`` (``[run, point]``)."""
        if self.full is None:
            return metrics
        out = {}
        for k, v in metrics.items():
            full = np.repeat(previous[k][:, -1:], v.shape[1], axis=1).astype(v.dtype)
            full[self.index[:self.num_real]] = v[:self.num_real]
            out[k] = full
        return out

    def propose(self, status: dict, remaining_chunks: int, chunk_s: float, compile_s: float,
                compiled: set) -> int | None:
        """The smaller batch size to move to now, or None: not at most half the current size, or
        ``remaining_chunks x chunk_s x (1 - new / size)`` below ``PAYBACK x compile_s`` for a
        size not in ``compiled``."""
        active = active_mask(status)[:self.num_real]
        new = bucket(int(active.sum()), self.multiple)
        if not (0 < active.sum() and new <= self.size // 2):
            return None
        saving = remaining_chunks * chunk_s * (1.0 - new / self.size)
        return new if new in compiled or saving > PAYBACK * compile_s else None

    def compact(self, state, status: dict, new_size: int):
        """The host state of the ``new_size`` batch holding the active runs (padded with a frozen one)."""
        host = to_host(state)  # one device-to-host copy of the batch
        self.full = self.merged(state, host)
        active = active_mask(status)[:self.num_real]
        slots = np.flatnonzero(active)
        frozen = int(np.flatnonzero(~active)[0]) if (~active).any() else int(slots[0])
        take = np.concatenate([slots, np.full(new_size - slots.size, frozen)])
        self.index = self.index[take]
        self.num_real = int(slots.size)
        self.size = new_size
        self.compactions.append(new_size)
        return jax.tree.map(lambda x: np.asarray(x)[take], host)


def _scatter(full, idx, values):
    out = np.array(full, copy=True)
    out[idx] = values
    return out
