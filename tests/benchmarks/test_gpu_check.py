"""``benchmarks/gpu_check.sh`` stays runnable: its CPU mode at tiny size (``GPU_CHECK_CPU=1``) runs
the sweep benchmark and reports the engine's model FLOP/s against the matmul FLOP/s measured in the
same run, as a line and as ``gpu_check.json``."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_in_cpu_mode(tmp_path):
    env = {**os.environ, "GPU_CHECK_CPU": "1", "PYTHON": sys.executable, "OUT": str(tmp_path)}
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    line = [l for l in done.stdout.splitlines() if l.startswith("gpu_check: ")]
    assert len(line) == 1, done.stdout[-2000:]
    fields = dict(kv.split("=") for kv in line[0].removeprefix("gpu_check: ").split())
    assert fields["backend"] == "cpu"
    row = json.loads((tmp_path / "gpu_check.json").read_text())
    assert row["tiny"] is True and row["backend"] == "cpu"
    # Rates are positive and finite; the model's fraction of the matmul rate is the ratio of the two (a model
    # step is matmuls plus elementwise work, so it cannot run far above the matmul rate at its own shapes).
    assert row["model_gflops"] > 0 and row["matmul_gflops"] > 0
    assert abs(row["fraction_of_matmul_rate"] - row["model_gflops"] / row["matmul_gflops"]) < 1e-9
    assert 0 < row["fraction_of_matmul_rate"] < 3
    assert abs(float(fields["fraction_of_matmul_rate"]) - row["fraction_of_matmul_rate"]) < 1e-3 * row[
        "fraction_of_matmul_rate"]
    sweep = json.loads((tmp_path / "sweep_gpu.json").read_text())
    assert sweep["dispatch_bound"] is None and sweep["compute_bound"]["runs"] == 4
