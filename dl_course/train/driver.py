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
from collections.abc import Callable
from typing import Any

import numpy as np

from dl_course.errors import Preempted
from dl_course.train import checkpoint as ckpt_lib
from dl_course.train.compaction import Compactor, active_mask
from dl_course.train.placement import any_process, to_host


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


@dataclasses.dataclass
class Compaction:
    """How a wave may shrink (``dl_course.train.compaction``): ``chunk_for(size)`` is the chunk
    program of ``size`` runs, ``place(host_state)`` puts a host state on the devices, sizes are
    multiples of ``multiple`` (the device count)."""

    chunk_for: Callable[[int], Callable]
    place: Callable
    multiple: int
    compiled: set = dataclasses.field(default_factory=set)  # sizes whose chunk program is compiled


def _status(state) -> dict:
    return to_host({"diverged": state.diverged, "stopped_at": state.stopped_at, "pending": state.pending})


def _finished(status: dict) -> bool:
    return bool(np.all(status["diverged"] | (status["stopped_at"] >= 0) | status["pending"]))


def _finish_exact_stop(plan: WavePlan, finish_fn: Callable, state, data, metrics: dict, timing: dict | None):
    """Replay the pending runs to their exact first step at the target, or to their last finite
    state (``finish_fn``: ``dl_course.train.exact_stop.replay_to_target`` then an evaluation), and
    write that state's evaluation into every evaluation point from the one that found it on."""
    t0 = time.perf_counter()
    pending = np.atleast_1d(_status(state)["pending"])
    anchor_step = np.atleast_1d(to_host(state.anchor.step))
    state, final = finish_fn(state, data, plan.targets)
    final = to_host(final)
    for i in np.flatnonzero(pending):
        k = int(anchor_step[i]) // plan.eval_every + 1  # the evaluation point that found it
        for name, v in metrics.items():
            v[i, k:] = final[name][i]
    if timing is not None:
        timing["exact_stop_s"] = timing.get("exact_stop_s", 0.0) + time.perf_counter() - t0
    return state, metrics


def run_wave(plan: WavePlan, chunk_fn: Callable, state, data, metrics0: dict, *, finish_fn: Callable,
             wave: int = 0, checkpoint_dir=None, resume_from=None, bar=None, on_chunk: Callable | None = None,
             timing: dict | None = None, compaction: Compaction | None = None):
    """Train one wave; returns ``(state, metrics)`` with metrics name -> ``[run, eval_point]``.

    ``finish_fn(state, data, targets) -> (state, metrics)``: the exact stop of the runs still
    pending when the wave ends (:func:`_finish_exact_stop`), called only if there are any.
    ``resume_from``: ``(chunks_done, state, metrics)`` restored from a checkpoint.
    ``timing`` (optional dict) receives ``first_chunk_incl_compile_s``, ``exact_stop_s``,
    ``train_s``, ``run_steps`` (run-steps computed, frozen runs and padding included) and
    ``active_run_steps`` (run-steps of the runs active at the start of each chunk).
    ``compaction``: between chunks, the runs still active move to a program of at most half the
    size when that many have stopped (:class:`Compaction`); ``on_chunk`` still sees every run.
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

    size = len(np.atleast_1d(_status(state)["diverged"]))
    packer = Compactor(size, compaction.multiple) if compaction is not None else None
    durations: list[float] = []  # chunk wall times at the current size (the first includes compilation)

    def save(c):
        full = state if packer is None or not packer.compacted else packer.merged(state)
        return ckpt_lib.save(wdir, f"chunk_{c:06d}", full, {k: np.concatenate(v, 1) for k, v in metrics.items()}, c)

    with preemption_guard() as flag:
        for c in range(done, plan.num_chunks):
            status_before = _status(state) if timing is not None else None
            real = packer.num_real if packer is not None else None
            t_chunk = time.perf_counter()
            state, m = chunk_fn(state, data, np.int32(c * steps_per_chunk), plan.targets)
            m = to_host(m)
            if packer is not None:
                m = packer.expand(m, {k: v[-1] for k, v in metrics.items()})
            for k, v in m.items():
                metrics[k].append(v)
            durations.append(time.perf_counter() - t_chunk)
            if timing is not None:
                if "first_chunk_incl_compile_s" not in timing:
                    timing["first_chunk_incl_compile_s"] = time.perf_counter() - t0
                timing["train_s"] = timing.get("train_s", 0.0) + time.perf_counter() - t_chunk
                n_slots = len(np.atleast_1d(status_before["diverged"]))
                timing["run_steps"] = timing.get("run_steps", 0) + n_slots * steps_per_chunk
                timing["active_run_steps"] = (timing.get("active_run_steps", 0)
                                              + int(active_mask(status_before)[:real].sum()) * steps_per_chunk)
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
            if packer is not None and not last:
                compaction.compiled.add(packer.size)
                status = _status(state)
                chunk_s = min(durations)
                compile_s = max(durations[0] - chunk_s, 0.0) if len(durations) > 1 else durations[0]
                new_size = packer.propose(status, plan.num_chunks - c - 1, chunk_s, compile_s, compaction.compiled)
                if new_size is not None:
                    state = compaction.place(packer.compact(state, status, new_size))
                    chunk_fn = compaction.chunk_for(new_size)
                    durations = []
    if packer is not None and packer.compacted:
        state = compaction.place(packer.merged(state))
        if timing is not None:
            timing.setdefault("compactions", []).append(packer.compactions)
    metrics = {k: np.concatenate(v, 1) for k, v in metrics.items()}
    if np.any(_status(state)["pending"]):  # at a target, or diverged inside an interval
        state, metrics = _finish_exact_stop(plan, finish_fn, state, data, metrics, timing)
    return state, metrics


def save_finished_wave(checkpoint_dir, wave: int, state, metrics: dict) -> None:
    """Record a finished wave (state and metrics) so a resume skips it; drop its chunk checkpoints."""
    wdir = ckpt_lib.wave_dir(checkpoint_dir, wave)
    ckpt_lib.save(wdir, "done", state, metrics, -1, keep=0)
