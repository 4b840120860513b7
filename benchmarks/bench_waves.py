"""Benchmark: a 1,024-run grid of the dispatch-bound MLP trained in waves of 256 vs all at once.

``config.max_parallel_runs = 256`` trains the grid in 4 waves through one compiled program; the
whole grid at once holds 4x the per-run state on the devices. Each variant runs in its own
process (peak resident memory is per process: ``resource.getrusage`` max RSS), after a warm-up
sweep that compiles; the times are of the second, cached sweep. Prints the ratios measured in
this run and writes ``results/benchmarks/waves.json``.
Run: ``python benchmarks/bench_waves.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from dl_course.devices import use_all_cpu_cores
use_all_cpu_cores()
from dl_course.train import default_config, sweep
c = default_config()
c.model_options.width = 64
c.model_options.depth = 2
c.optimizer = "momentum"
c.batch_size = 128
c.steps = {steps}
c.eval_every = {steps}
c.chunk_evals = 1
c.seeds = list(range({runs}))
c.learning_rates = [0.05]
c.max_parallel_runs = {wave}
sweep(c)
t = time.perf_counter()
res = sweep(c)
seconds = time.perf_counter() - t
print(json.dumps({{"seconds": seconds, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "waves": res.timing["waves"], "final_loss_mean": float(res.metrics["train_loss"][:, -1].mean())}}))
"""


def measure(runs: int, steps: int, wave: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), steps=steps, runs=runs, wave=wave)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 runs in waves of 16, 50 steps (a smoke run)")
    args = parser.parse_args()
    runs, wave, steps = (64, 16, 50) if args.quick else (1024, 256, 500)
    whole = measure(runs, steps, 0)
    waves = measure(runs, steps, wave)
    report = {"runs": runs, "steps": steps, "wave_size": wave, "all_at_once": whole, "in_waves": waves,
              "time_ratio_waves_over_all": waves["seconds"] / whole["seconds"],
              "peak_memory_ratio_waves_over_all": waves["max_rss_mb"] / whole["max_rss_mb"],
              # float32: different batch shapes sum in different orders; 500 steps amplify that
              "final_loss_relative_difference": abs(waves["final_loss_mean"] / whole["final_loss_mean"] - 1),
              "machine_load_note": "measured while the 2-core machine ran other work (load average 10-20): "
                                   "the time ratio is indicative, the memory ratio is not affected"}
    print(json.dumps(report, indent=2))
    if not args.quick:
        sys.path.insert(0, str(ROOT))
        from dl_course import results

        results.write_json(ROOT / "results" / "benchmarks" / "waves.json",
                           {**report, "versions": results.package_versions()})


if __name__ == "__main__":
    main()
