"""Multi-process sweeps on jax.distributed: two real processes on this machine (coordinator on
127.0.0.1, one CPU device each) train the same grid as one single-process sweep."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from dl_course import cli

ARGS = ["--config.train.steps=40", "--config.train.eval_every=10", "--config.train.chunk_evals=2",
        "--config.train.model_options.width=16", "--config.train.seeds=[0, 1]",
        "--config.train.learning_rates=[0.1, 0.3]", "--config.train.dataset_options={'num_train': 400}"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_and_write_one_result(tmp_path):
    single = cli.run_study("sweep", ARGS, workdir=str(tmp_path / "single"))
    port = _free_port()
    env = {**os.environ, "DL_COURSE_CPU_DEVICES": "1"}  # one CPU device per process; same XLA flags as here
    out = tmp_path / "multi"
    procs = [subprocess.Popen([sys.executable, "-m", "dl_course.cli", "run", "sweep", "--distributed",
                               "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i),
                               "--workdir", str(out), *ARGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=os.getcwd()) for i in range(2)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (o, e) in zip(procs, outputs):
        assert p.returncode == 0, e[-2000:]
    assert "results written to" in outputs[0][0] and "results written to" not in outputs[1][0]  # logs: process 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi", "single"]  # exactly one result directory
    a, b = np.load(single / "metrics.npz"), np.load(out / "metrics.npz")
    for k in ("train_loss", "test_loss", "test_accuracy"):
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5)
    import json

    device = json.loads((out / "summary.json").read_text())["device"]
    assert device["process_count"] == 2 and device["num_devices"] == 2


# Process 1 of the crashing run: after its first checkpoint it writes a marker and waits to be killed.
_STALL_AFTER_FIRST_CHECKPOINT = """
import sys, time
from pathlib import Path
from dl_course import cli
from dl_course.train import checkpoint

marker, real_save = Path(sys.argv[1]), checkpoint.save

def save(*args, **kwargs):
    path = real_save(*args, **kwargs)
    marker.write_text("first checkpoint written")
    time.sleep(600)
    return path

checkpoint.save = save
sys.exit(cli.main(sys.argv[2:]))
"""

FAULT_ARGS = ["--config.train.steps=60", "--config.train.eval_every=10", "--config.train.chunk_evals=1",
              "--config.train.checkpoint_every=1", "--config.train.model_options.width=16",
              "--config.train.seeds=[0, 1]", "--config.train.learning_rates=[0.1, 0.3]",
              "--config.train.dataset_options={'num_train': 400}"]


def _two_processes(out, port, env, first=("-m", "dl_course.cli"), second=("-m", "dl_course.cli"), extra=()):
    common = ["run", "sweep", "--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
              "--workdir", str(out), *FAULT_ARGS, *extra]
    return [subprocess.Popen([sys.executable, *launcher, *common, "--process-id", str(i)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=os.getcwd())
            for i, launcher in enumerate((first, second))]


def test_the_cli_gives_jax_a_30_s_heartbeat_timeout_unless_told_otherwise(monkeypatch):
    """``--distributed`` passes ``--heartbeat-timeout`` (default 30 s, not JAX's 100 s) to
    ``jax.distributed.initialize``; the test below runs the real coordination service with a shorter one."""
    import jax

    seen = []

    def initialize(*args, **kwargs):
        seen.append(kwargs["heartbeat_timeout_seconds"])
        raise RuntimeError("stop here")

    monkeypatch.setattr(jax.distributed, "initialize", initialize)
    for extra, expected in (([], 30), (["--heartbeat-timeout", "7"], 7)):
        with pytest.raises(RuntimeError, match="stop here"):
            cli.main(["run", "sweep", "--distributed", "--coordinator", "127.0.0.1:1", "--num-processes", "2",
                      "--process-id", "0", *extra])
    assert seen == [30, 7]


def test_a_killed_process_stops_the_other_and_resume_with_two_processes_finishes(tmp_path):
    """SIGKILL process 1 after the first checkpoint: JAX's coordination service misses its heartbeats
    and terminates process 0 (SIGABRT, its log names the lost task) within the heartbeat timeout
    the CLI gives it (10 s here, to keep the test short; 30 s by default, JAX's own is 100 s); no
    result directory claims completion, the complete checkpoint is kept, and ``--resume`` with two
    processes finishes equal to an uninterrupted one-process run."""
    import signal
    import time

    single = cli.run_study("sweep", FAULT_ARGS, workdir=str(tmp_path / "single"))
    env = {**os.environ, "DL_COURSE_CPU_DEVICES": "1"}
    out, marker = tmp_path / "multi", tmp_path / "marker"
    procs = _two_processes(out, _free_port(), env, second=("-c", _STALL_AFTER_FIRST_CHECKPOINT, str(marker)),
                           extra=["--heartbeat-timeout", "10"])
    deadline = time.time() + 300
    while not marker.exists() and time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.1)
    assert marker.exists(), [p.poll() for p in procs]
    procs[1].send_signal(signal.SIGKILL)
    killed = time.time()
    _, err = procs[0].communicate(timeout=120)
    waited = time.time() - killed
    procs[1].communicate()
    assert procs[0].returncode != 0 and waited < 30, (procs[0].returncode, waited)  # 10 s, not the default 30
    assert "heartbeat" in err and "Task 1" in err, err[-3000:]
    ckpts = tmp_path / "multi.partial" / "checkpoints" / "wave_000"
    assert not out.exists() and (ckpts / "chunk_000001").is_dir()
    procs = _two_processes(out, _free_port(), env, extra=["--resume"])
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    a, b = np.load(single / "metrics.npz"), np.load(out / "metrics.npz")
    for k in ("train_loss", "test_loss", "test_accuracy"):
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5)
