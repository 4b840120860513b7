"""Benchmark: one vmapped, sharded sweep vs the same runs one after another.

Prints ratios measured in one run (the machine is noisy; only ratios from the same run count) and
writes ``results/benchmarks/sweep.json``. Run: ``python benchmarks/bench_sweep.py [--quick]``.

1. compute-bound: 16 runs of an MLP 40-512-512-10 on MNIST-1D, SGD with momentum, batch 128,
   2000 steps. Sharded sweep (run axis over all devices; on CPU one device per core) vs a Python
   loop over a jitted single-run step, run after run. Also the sweep's model FLOP/s as a fraction
   of the dense float32 matmul FLOP/s at the model's own shapes (16 x 128x512 @ 512x512, sharded
   the same way), measured in the same process.
2. dispatch-bound: 64 runs of an MLP 40-64-64-10, batch 128, 500 steps: vmapped sweep vs a
   per-run Python loop of jitted steps.
Model FLOPs per step and run: 6 * batch * (sum of weight-matrix sizes) (forward 2x, backward 4x).

``--tiny`` (a check that the script runs, e.g. ``gpu_check.sh`` in CPU mode; not the benchmark):
the compute-bound part only (4 runs of width 64, 20 steps), the same measurements and JSON keys;
``dispatch_bound`` is null.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dl_course.devices import use_all_cpu_cores  # noqa: E402

use_all_cpu_cores()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

from dl_course import results  # noqa: E402
from dl_course.train import default_config, sweep  # noqa: E402
from dl_course.train.build import build_program, load_data  # noqa: E402
from dl_course.train.grid import make_grid, stack_hparams  # noqa: E402
from dl_course.train.program import init_run, train_step  # noqa: E402


def config_for(width: int, steps: int, runs: int):
    c = default_config()
    c.model_options.width = width
    c.model_options.depth = 2
    c.optimizer = "momentum"
    c.batch_size = 128
    c.steps = steps
    c.eval_every = steps  # evaluation only at start and end: the benchmark times training
    c.chunk_evals = 1
    c.seeds = list(range(runs))
    c.learning_rates = [0.05]
    return c


def time_sweep(config) -> float:
    sweep(config)  # compile (cached programs are reused by the timed call)
    t = time.perf_counter()
    sweep(config)
    return time.perf_counter() - t


def time_sequential(config) -> float:
    """Each run alone: init, then a Python loop of a jitted single-run step, run after run."""
    data = load_data(config)
    prog, _ = build_program(config, data, None, None, [])
    dev = {k: jnp.asarray(getattr(data, k)) for k in ("x_train", "y_train", "x_test", "y_test")}
    step = jax.jit(lambda s, d: train_step(prog, s, d, s.step)[0])
    init = jax.jit(functools.partial(init_run, prog))
    runs = make_grid(config.seeds, config.learning_rates)
    hp = stack_hparams(runs)

    def one(i):
        s = init(jnp.uint32(runs[i]["seed"]), {k: jnp.asarray(v[i]) for k, v in hp.items()}, dev)
        for _ in range(int(config.steps)):
            s = step(s, dev)
        return jax.block_until_ready(s.params)

    s = init(jnp.uint32(0), {k: jnp.asarray(v[0]) for k, v in hp.items()}, dev)
    jax.block_until_ready(step(s, dev))  # compile
    t = time.perf_counter()
    for i in range(len(runs)):
        one(i)
    return time.perf_counter() - t


def matmul_flops(runs: int, b: int, k: int, n: int, reps: int = 200) -> float:
    """FLOP/s of ``runs`` independent [b,k]@[k,n] float32 matmuls, run axis sharded over devices."""
    mesh = Mesh(np.asarray(jax.devices()), ("runs",))
    sh = NamedSharding(mesh, PartitionSpec("runs"))
    pad = -runs % len(jax.devices())
    x = jax.device_put(jnp.ones((runs + pad, b, k), jnp.float32), sh)
    w = jax.device_put(jnp.full((runs + pad, k, n), 1e-3, jnp.float32), sh)

    @jax.jit
    def f(x, w):
        def body(_, acc):
            return acc + jnp.einsum("rbk,rkn->rbn", x + acc[:, :, :1] * 1e-9, w)
        return jax.lax.fori_loop(0, reps, body, jnp.zeros((runs + pad, b, n), jnp.float32))

    jax.block_until_ready(f(x, w))
    t = time.perf_counter()
    jax.block_until_ready(f(x, w))
    return 2.0 * (runs + pad) * b * k * n * reps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer steps (a smoke run, not the benchmark)")
    ap.add_argument("--tiny", action="store_true", help="tiny widths, runs and steps (checks that it runs)")
    ap.add_argument("--out", default="results/benchmarks/sweep.json")
    args = ap.parse_args()
    steps_c, steps_d = (20, 0) if args.tiny else (200, 100) if args.quick else (2000, 500)
    (width_c, runs_c), (width_d, runs_d) = ((64, 4), (64, 64)) if args.tiny else ((512, 16), (64, 64))

    c = config_for(width_c, steps_c, runs_c)
    t_sweep = time_sweep(c)
    t_seq = time_sequential(c)
    weights = 40 * width_c + width_c * width_c + width_c * 10
    model_flops = runs_c * steps_c * 6 * 128 * weights / t_sweep
    peak = matmul_flops(runs_c, 128, width_c, width_c)
    dispatch = None
    if steps_d:
        d = config_for(width_d, steps_d, runs_d)
        t_sweep_d = time_sweep(d)
        t_seq_d = time_sequential(d)
        dispatch = {"runs": runs_d, "model": f"mlp 40-{width_d}-{width_d}-10", "batch": 128, "steps": steps_d,
                    "sweep_s": t_sweep_d, "sequential_s": t_seq_d, "speedup": t_seq_d / t_sweep_d,
                    "targets": {"speedup": ">= 12"}}
    out = {
        "device": results.device_info(),
        "versions": results.package_versions(),
        "compute_bound": {"runs": runs_c, "model": f"mlp 40-{width_c}-{width_c}-10", "batch": 128, "steps": steps_c,
                          "sweep_s": t_sweep, "sequential_s": t_seq, "speedup": t_seq / t_sweep,
                          "model_gflops": model_flops / 1e9, "matmul_gflops": peak / 1e9,
                          "fraction_of_matmul_rate": model_flops / peak,
                          "targets": {"speedup": ">= 1.4", "fraction_of_matmul_rate": ">= 0.70"}},
        "dispatch_bound": dispatch,
        "quick": args.quick,
        "tiny": args.tiny,
    }
    print(f"devices: {out['device']['num_devices']} x {out['device']['device_kind']}")
    print(f"compute-bound : sweep {t_sweep:.1f}s vs sequential {t_seq:.1f}s -> {t_seq / t_sweep:.2f}x; "
          f"model {model_flops / 1e9:.1f} GFLOP/s = {model_flops / peak:.0%} of matmul {peak / 1e9:.1f} GFLOP/s")
    if dispatch:
        print(f"dispatch-bound: sweep {t_sweep_d:.1f}s vs sequential {t_seq_d:.1f}s -> {t_seq_d / t_sweep_d:.1f}x")
    results.write_json(Path(args.out), out)


if __name__ == "__main__":
    main()
