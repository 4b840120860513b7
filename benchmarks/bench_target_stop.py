"""Benchmark: the cost of the exact target stop against a sweep without a target.

The generalization-measures setting at one architecture (MNIST-1D, 500 examples, a 40-64-64-10
MLP, SGD with momentum, batch 64; learning rate x momentum x weight decay x seeds vmapped) is
trained (a) with ``target_train_loss = 0.01`` — evaluation points every 100 steps, the pending runs
replayed step by step at the end (``dl_course.train.exact_stop``) — and (b) without a target for
the same number of steps as (a) trained (its last evaluation step), so both do the same training
and (a) pays only for the stop. Each is compiled by a warm-up call; then ``--rounds`` alternating
timed calls; medians. Prints the ratio (a) / (b) and the replay's share, and writes
``results/benchmarks/target_stop.json``.
Run: ``python benchmarks/bench_target_stop.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def config(target: float, steps: int, seeds: int):
    from dl_course.train import default_config

    c = default_config()
    c.dataset_options.num_train = 500
    c.model_options.width = 64
    c.model_options.depth = 2
    c.optimizer = "momentum"
    c.batch_size = 64
    c.steps = steps
    c.eval_every = 100
    c.chunk_evals = 10
    c.target_train_loss = target
    c.seeds = list(range(seeds))
    c.learning_rates = [0.05, 0.1, 0.2]
    return c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 3000 steps, 1 round (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from dl_course.devices import use_all_cpu_cores

    use_all_cpu_cores()
    import jax

    from dl_course.results import package_versions
    from dl_course.train import sweep

    seeds, budget, rounds = (1, 3000, 1) if args.quick else (2, 6000, args.rounds)
    grid = {"momentum": [0.5, 0.9], "weight_decay": [0.0, 1e-4, 3e-4]}
    exact_cfg = config(0.01, budget, seeds)
    first = sweep(exact_cfg, **grid)  # compiles the chunk, init and replay programs
    steps = int(first.steps[-1])
    plain_cfg = config(0.0, steps, seeds)
    sweep(plain_cfg, **grid)  # compiles the plain programs for this step count
    times = {"exact_stop": [], "no_target": [], "replay": []}
    for _ in range(rounds):
        t = time.perf_counter()
        res = sweep(exact_cfg, **grid)
        times["exact_stop"].append(time.perf_counter() - t)
        times["replay"].append(res.timing.get("exact_stop_s", 0.0))
        t = time.perf_counter()
        sweep(plain_cfg, **grid)
        times["no_target"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    final = res.metrics["train_loss"][res.converged, -1] / 0.01
    report = {
        "setting": "MNIST-1D 500 examples, MLP 40-64-64-10, momentum SGD batch 64, eval every 100 steps, "
                   f"{len(res.grid)} runs (3 lr x 2 momentum x 3 weight decay x {seeds} seeds), target train CE 0.01",
        "steps_trained": steps, "converged": int(res.converged.sum()), "runs": len(res.grid),
        "final_loss_over_target": [float(final.min()), float(final.max())] if final.size else None,
        "partial_last_steps": int((res.step_fraction[res.converged] < 1).sum()),
        "seconds_median": med, "seconds_all": times, "rounds": rounds,
        "ratio_exact_stop_over_no_target": med["exact_stop"] / med["no_target"],
        "replay_share_of_exact_stop": med["replay"] / med["exact_stop"],
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}", "versions": package_versions(),
    }
    print(json.dumps({k: report[k] for k in ("steps_trained", "converged", "final_loss_over_target",
                                             "ratio_exact_stop_over_no_target", "replay_share_of_exact_stop",
                                             "seconds_median")}, indent=1))
    if not args.quick:
        out = ROOT / "results" / "benchmarks" / "target_stop.json"
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(out)


if __name__ == "__main__":
    main()
