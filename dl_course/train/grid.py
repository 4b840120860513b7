"""Hyperparameter grids: the cartesian product seeds x learning rates x other scalars."""

from __future__ import annotations

import itertools

import numpy as np

from dl_course.errors import ConfigError


def make_grid(seeds, learning_rates, **grid) -> list[dict]:
    """One dict per run, in row-major order (seed slowest, then learning rate, then ``grid`` keys
    in the given order). Raises ``ConfigError`` for an empty axis, a value repeated within an axis
    (the same grid point twice), a non-positive learning rate or a negative / non-integer seed."""
    axes = {"seed": list(seeds), "learning_rate": list(learning_rates)}
    for k, v in grid.items():
        axes[k] = list(np.atleast_1d(v).tolist())
    for k, v in axes.items():
        if len(v) == 0:
            raise ConfigError(f"empty grid: '{k}' has no values; give at least one")
    bad = [lr for lr in axes["learning_rate"] if not (isinstance(lr, (int, float)) and lr > 0)]
    if bad:
        raise ConfigError(f"learning rates must be positive numbers, got {bad}")
    bad = [s for s in axes["seed"] if not (isinstance(s, int) and s >= 0)]
    if bad:
        raise ConfigError(f"seeds must be non-negative integers, got {bad}")
    for k, v in axes.items():  # a repeated value trains the same runs twice and reports them twice
        repeated = sorted({x for x in v if v.count(x) > 1}, key=v.index)
        if repeated:
            raise ConfigError(f"repeated grid point: {k} {', '.join(map(repr, repeated))} given more than once in "
                              f"{v}; each run is trained once: give distinct values")
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*axes.values())]


def stack_hparams(runs: list[dict]) -> dict[str, np.ndarray]:
    """float32 arrays ``[run]`` of every hyperparameter except the seed."""
    return {k: np.asarray([r[k] for r in runs], np.float32) for k in runs[0] if k != "seed"}


def pad_runs(runs: list[dict], multiple: int, max_parallel: int = 0) -> list[list[dict]]:
    """The runs in waves of equal size, padded by repeating the last grid point.

    The wave size is ``len(runs)`` (``max_parallel = 0``) or ``max_parallel``, rounded up to a
    multiple of ``multiple`` (the device count, so that every device holds the same number of
    runs); all waves share one compiled program, and the padding is dropped from the results.
    """
    size = len(runs) if max_parallel <= 0 else min(int(max_parallel), len(runs))
    size = -(-size // multiple) * multiple
    num_waves = -(-len(runs) // size)
    padded = runs + [runs[-1]] * (num_waves * size - len(runs))
    return [padded[i * size:(i + 1) * size] for i in range(num_waves)]
