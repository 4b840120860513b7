"""Multi-process sweeps on jax.distributed: two real processes on this machine (coordinator on
127.0.0.1, one CPU device each) train the same grid as one single-process sweep."""

import os
import socket
import subprocess
import sys

import numpy as np

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
