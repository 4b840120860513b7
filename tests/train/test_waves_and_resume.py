"""Waves (max_parallel_runs) and what a resume must refuse or survive: a different computation,
a damaged newest checkpoint, preemption inside a wave."""

import os
import signal

import numpy as np
import pytest

from dl_course.train import ConfigError, Preempted, sweep
from tests.compile_counter import count_compilations
from tests.train.conftest import tiny_config


def _equal(a, b):
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k])
    np.testing.assert_array_equal(a.params["Dense_0"]["kernel"], b.params["Dense_0"]["kernel"])


def test_waves_equal_one_wave_and_share_one_program(small_mnist1d):
    config = tiny_config(steps=20)
    grid = dict(seeds=[0, 1, 2], learning_rates=[0.05, 0.2], data=small_mnist1d)
    whole = sweep(config, **grid)
    with count_compilations() as compiles:
        waves = sweep(tiny_config(steps=20, max_parallel_runs=2), **grid)
    assert waves.timing["waves"] == 3 and waves.timing["runs_per_wave"] == 2
    assert compiles[0] <= 3  # init, eval, chunk: once for all three waves
    assert waves.grid == whole.grid
    for k in whole.metrics:  # a run's computation does not depend on its neighbours
        np.testing.assert_allclose(waves.metrics[k], whole.metrics[k], rtol=1e-6, atol=1e-7)


def test_resume_with_a_different_grid_is_refused_naming_the_difference(small_mnist1d, tmp_path):
    config = tiny_config(checkpoint_every=1)
    sweep(config, seeds=[0], learning_rates=[0.1, 0.3], data=small_mnist1d, checkpoint_dir=tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match=r"cannot resume.*grid.*0\.3.*1\.1"):
        sweep(config, seeds=[0], learning_rates=[0.1, 1.1], data=small_mnist1d, checkpoint_dir=tmp_path, resume=True)
    wider = tiny_config(checkpoint_every=1)
    wider.model_options.width = 48
    with pytest.raises(ConfigError, match=r"engine_config\.model_options\.width: 32 -> 48"):
        sweep(wider, seeds=[0], learning_rates=[0.1, 0.3], data=small_mnist1d, checkpoint_dir=tmp_path, resume=True)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing touched


def _stop_in_chunk(n):
    def on_chunk(info):
        if info.chunk == n:
            os.kill(os.getpid(), signal.SIGTERM)
    return on_chunk


def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(small_mnist1d, tmp_path, capsys):
    config = tiny_config(checkpoint_every=1)
    grid = dict(seeds=[0, 1], learning_rates=[0.1], data=small_mnist1d)
    full = sweep(config, **grid)
    with pytest.raises(Preempted):
        sweep(config, checkpoint_dir=tmp_path, on_chunk=_stop_in_chunk(3), **grid)
    wave = tmp_path / "wave_000"
    assert sorted(p.name for p in wave.iterdir()) == ["chunk_000002", "chunk_000003"]
    victim = max((p for p in (wave / "chunk_000003").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])  # truncated
    resumed = sweep(config, checkpoint_dir=tmp_path, resume=True, **grid)
    err = capsys.readouterr().err
    assert "warning: checkpoint" in err and "chunk_000003" in err and len(
        [line for line in err.splitlines() if line.startswith("warning")]) == 1
    _equal(resumed, full)


def test_no_valid_checkpoint_is_one_clear_error_and_deletes_nothing(small_mnist1d, tmp_path):
    config = tiny_config(checkpoint_every=1)
    grid = dict(seeds=[0], learning_rates=[0.1], data=small_mnist1d)
    with pytest.raises(Preempted):
        sweep(config, checkpoint_dir=tmp_path, on_chunk=_stop_in_chunk(1), **grid)
    for f in (tmp_path / "wave_000").rglob("*"):
        if f.is_file():
            f.write_bytes(b"")
    files = sorted(tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match="no valid checkpoint"):
        sweep(config, checkpoint_dir=tmp_path, resume=True, **grid)
    assert sorted(tmp_path.rglob("*")) == files


def test_preempted_inside_a_later_wave_resumes_exactly(small_mnist1d, tmp_path):
    config = tiny_config(max_parallel_runs=2)
    grid = dict(seeds=[0, 1, 2, 3], learning_rates=[0.1], data=small_mnist1d)
    full = sweep(config, **grid)
    calls = []

    def stop_in_second_wave(info):
        calls.append(info.wave)
        if info.wave == 1 and info.chunk == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Preempted):
        sweep(config, checkpoint_dir=tmp_path, on_chunk=stop_in_second_wave, **grid)
    assert (tmp_path / "wave_000" / "done").is_dir() and (tmp_path / "wave_001" / "chunk_000002").is_dir()
    resumed = sweep(config, checkpoint_dir=tmp_path, resume=True, on_chunk=lambda i: calls.append(("r", i.wave)),
                    **grid)
    assert ("r", 0) not in calls  # the finished wave is not retrained
    _equal(resumed, full)


def test_a_fresh_start_into_a_used_checkpoint_dir_cannot_resume_the_old_computation(small_mnist1d, tmp_path):
    """Run A is preempted after 3 chunks; run B (another grid) starts afresh in the same directory
    and is preempted after 1: resuming B must continue B (A's chunk_000003 is gone), not A."""
    config = tiny_config(checkpoint_every=1)
    with pytest.raises(Preempted):
        sweep(config, seeds=[0], learning_rates=[0.1], data=small_mnist1d, checkpoint_dir=tmp_path,
              on_chunk=_stop_in_chunk(3))
    with pytest.raises(Preempted):
        sweep(config, seeds=[0], learning_rates=[0.3], data=small_mnist1d, checkpoint_dir=tmp_path,
              on_chunk=_stop_in_chunk(1))
    assert sorted(p.name for p in (tmp_path / "wave_000").iterdir()) == ["chunk_000001"]
    resumed = sweep(config, seeds=[0], learning_rates=[0.3], data=small_mnist1d, checkpoint_dir=tmp_path, resume=True)
    _equal(resumed, sweep(config, seeds=[0], learning_rates=[0.3], data=small_mnist1d))
