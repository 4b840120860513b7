"""The host loop over compiled chunks: checkpoints and resume, progress, preemption, early exit.

``run_wave`` drives one wave of runs (all of a grid, or ``max_parallel_runs`` of them) through
``n_chunks`` calls of the compiled chunk program. Between chunks it gathers the metrics, saves a
checkpoint every ``checkpoint_every`` chunks, calls ``on_chunk`` (host-side logging, e.g.
TensorBoard), and stops early when every run has reached its target or diverged; at the end it
replays the runs that reached their target to the exact first step (``dl_course.train.exact_stop``).

Preemption: while a wave runs, SIGTERM and SIGINT (a cluster's preemption notice, Ctrl-C) only
set a flag; the current chunk finishes, a checkpoint is written and :class:`Preempted` is raised,
so ``--resume`` continues exactly where the run stopped. A second SIGINT interrupts at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from typing import Any, Callable

import numpy as np

from dl_course.train import checkpoint as ckpt_lib
from dl_course.train.placement import any_process, to_host


class Preempted(Exception):
    """The sweep stopped on a signal after writing a checkpoint (``checkpoint`` is its path, or
    None when no checkpoint directory was given)."""

    def __init__(self, signum: int, checkpoint):
        self.signum = signum
        self.checkpoint = checkpoint
        name = signal.Signals(signum).name
        where = f"checkpoint written to {checkpoint}" if checkpoint else "no checkpoint directory: progress lost"
        super().__init__(f"stopped by {name} after a complete chunk; {where}")


@contextlib.contextmanager
def preemption_guard():
    """While active, SIGTERM / SIGINT set ``flag["signum"]`` instead of killing the process."""
    flag: dict[str, Any] = {"signum": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["signum"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["signum"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@dataclasses.dataclass
class ChunkInfo:
    """What ``on_chunk`` sees after each chunk."""

    wave: int
    chunk: int  # chunks done in this wave
    num_chunks: int
    metrics: dict  # name -> [run, eval_point] of this chunk (host, this wave's runs)
    steps: np.ndarray  # the evaluation steps of this chunk


@dataclasses.dataclass
class WavePlan:
    num_chunks: int
    intervals_per_chunk: int
    eval_every: int
    checkpoint_every: int
    targets: np.ndarray  # float32 [2]: train loss, train accuracy (0 = off)


def _status(state) -> dict:
    return to_host({"diverged": state.diverged, "stopped_at": state.stopped_at, "pending": state.pending})


def _finished(status: dict) -> bool:
    return bool(np.all(status["diverged"] | (status["stopped_at"] >= 0) | status["pending"]))


def _finish_exact_stop(plan: WavePlan, finish_fn: Callable, state, data, metrics: dict, timing: dict | None):
    """Replay the pending runs to their exact first step at the target (``finish_fn``:
    ``dl_course.train.exact_stop.replay_to_target`` then an evaluation), and write that state's
    evaluation into every evaluation point from the one that found the target on."""
    t0 = time.perf_counter()
    pending = np.atleast_1d(_status(state)["pending"])
    state, final = finish_fn(state, data, plan.targets)
    final, stopped = to_host(final), np.atleast_1d(to_host(state.stopped_at))
    for i in np.flatnonzero(pending):
        k = -(-int(stopped[i]) // plan.eval_every)  # the evaluation point that found it: ceil(s / E)
        for name, v in metrics.items():
            v[i, k:] = final[name][i]
    if timing is not None:
        timing["exact_stop_s"] = timing.get("exact_stop_s", 0.0) + time.perf_counter() - t0
    return state, metrics


def run_wave(plan: WavePlan, chunk_fn: Callable, state, data, metrics0: dict, *, finish_fn: Callable,
             wave: int = 0, checkpoint_dir=None, resume_from=None, bar=None, on_chunk: Callable | None = None,
             timing: dict | None = None):
    """Train one wave; returns ``(state, metrics)`` with metrics name -> ``[run, eval_point]``.

    ``finish_fn(state, data, targets) -> (state, metrics)``: the exact stop of the runs still
    pending when the wave ends (:func:`_finish_exact_stop`), called only if there are any.
    ``resume_from``: ``(chunks_done, state, metrics)`` restored from a checkpoint.
    ``timing`` (optional dict) receives ``first_chunk_incl_compile_s`` and ``exact_stop_s``.
    """
    metrics = {k: [np.asarray(v)] for k, v in metrics0.items()}
    done = 0
    if resume_from is not None:
        done, state, restored = resume_from
        metrics = {k: [np.asarray(v)] for k, v in restored.items()}
    wdir = ckpt_lib.wave_dir(checkpoint_dir, wave) if checkpoint_dir is not None else None
    steps_per_chunk = plan.intervals_per_chunk * plan.eval_every
    targets_on = bool(np.any(plan.targets > 0))
    t0 = time.perf_counter()

    def save(c):
        return ckpt_lib.save(wdir, f"chunk_{c:06d}", state, {k: np.concatenate(v, 1) for k, v in metrics.items()}, c)

    with preemption_guard() as flag:
        for c in range(done, plan.num_chunks):
            state, m = chunk_fn(state, data, np.int32(c * steps_per_chunk), plan.targets)
            m = to_host(m)
            for k, v in m.items():
                metrics[k].append(v)
            if timing is not None and "first_chunk_incl_compile_s" not in timing:
                timing["first_chunk_incl_compile_s"] = time.perf_counter() - t0
            if bar is not None:
                bar.update(1)
            if on_chunk is not None:
                steps = (c * plan.intervals_per_chunk + 1 + np.arange(plan.intervals_per_chunk)) * plan.eval_every
                on_chunk(ChunkInfo(wave, c + 1, plan.num_chunks, m, steps))
            stop_now = any_process(flag["signum"] is not None)
            finished = targets_on and _finished(_status(state))
            last = c + 1 == plan.num_chunks or finished
            if wdir is not None and not last and (stop_now or (plan.checkpoint_every > 0
                                                                and (c + 1) % plan.checkpoint_every == 0)):
                path = save(c + 1)
            if stop_now and not last:
                raise Preempted(flag["signum"] or signal.SIGTERM, path if wdir is not None else None)
            if finished:
                break
    metrics = {k: np.concatenate(v, 1) for k, v in metrics.items()}
    if targets_on and np.any(_status(state)["pending"]):
        state, metrics = _finish_exact_stop(plan, finish_fn, state, data, metrics, timing)
    return state, metrics


def save_finished_wave(checkpoint_dir, wave: int, state, metrics: dict) -> None:
    """Record a finished wave (state and metrics) so a resume skips it; drop its chunk checkpoints."""
    wdir = ckpt_lib.wave_dir(checkpoint_dir, wave)
    ckpt_lib.save(wdir, "done", state, metrics, -1, keep=0)
