"""The host loop over compiled chunks: checkpoints and resume, progress, preemption, early exit.

``run_wave`` drives one wave of runs (all of a grid, or ``max_parallel_runs`` of them) through
``n_chunks`` calls of the compiled chunk program. Between chunks it gathers the metrics, saves a
checkpoint every ``checkpoint_every`` chunks, calls ``on_chunk`` (host-side logging, e.g.
TensorBoard), and stops early when every run has reached its target or diverged.

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

from dl_course.errors import Preempted
from dl_course.train import checkpoint as ckpt_lib
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


def _finished(state) -> bool:
    status = to_host({"diverged": state.diverged, "stopped_at": state.stopped_at})
    return bool(np.all(status["diverged"] | (status["stopped_at"] >= 0)))


def run_wave(plan: WavePlan, chunk_fn: Callable, state, data, metrics0: dict, *, wave: int = 0,
             checkpoint_dir=None, resume_from=None, bar=None, on_chunk: Callable | None = None,
             timing: dict | None = None):
    """Train one wave; returns ``(state, metrics)`` with metrics name -> ``[run, eval_point]``.

    ``resume_from``: ``(chunks_done, state, metrics)`` restored from a checkpoint.
    ``timing`` (optional dict) receives ``first_chunk_incl_compile_s``.
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
            finished = targets_on and _finished(state)
            last = c + 1 == plan.num_chunks or finished
            if wdir is not None and not last and (stop_now or (plan.checkpoint_every > 0
                                                                and (c + 1) % plan.checkpoint_every == 0)):
                path = save(c + 1)
            if stop_now and not last:
                raise Preempted(flag["signum"] or signal.SIGTERM, path if wdir is not None else None)
            if finished:
                break
    return state, {k: np.concatenate(v, 1) for k, v in metrics.items()}


def save_finished_wave(checkpoint_dir, wave: int, state, metrics: dict) -> None:
    """Record a finished wave (state and metrics) so a resume skips it; drop its chunk checkpoints."""
    wdir = ckpt_lib.wave_dir(checkpoint_dir, wave)
    ckpt_lib.save(wdir, "done", state, metrics, -1, keep=0)
