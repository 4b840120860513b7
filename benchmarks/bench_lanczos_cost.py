"""Benchmark: why 20 tracked Lanczos iterations cost far more than twice 10 (and what removes it).

``benchmarks/bench_curvature.py`` measured the sharpness tracker (warm-started Lanczos every 100
steps) at 1.08x the untracked sweep with 10 iterations and 1.58x with 20: the second 10 HVPs cost
7x the first 10. This script times the same computation in isolation — 16 runs of the
edge-of-stability problem (40-100-100-10 tanh MLP, MSE, 1000 MNIST-1D examples, float32), vmapped,
``E`` evaluation points inside one ``lax.scan`` with a GD step between them, as inside the training
scan — for ``m`` Lanczos iterations and three ways of solving the ``m x m`` tridiagonal
eigenproblem:

* ``host``: ``jax.pure_callback`` to numpy's LAPACK (the former CPU path of ``dl_course.linalg``);
* ``host_1thread``: the same with ``OPENBLAS_NUM_THREADS=1`` (numpy's BLAS threads off);
* ``device``: ``dl_course.linalg.eigh_tridiagonal`` (parallel Jacobi in XLA operations).

Compilation (``lower().compile()``) and execution (median of ``--reps`` calls) are timed
separately, one process per solver and round (every ``m`` in it), the processes interleaved over
rounds (the machine is shared: only ratios from one run count). Writes ``results/benchmarks/lanczos_cost.json``.
Run: ``python benchmarks/bench_lanczos_cost.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLVERS = ("host", "host_1thread", "device")


def worker(solver: str, iters: list[int], runs: int, points: int, reps: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import jax
    import jax.numpy as jnp
    import numpy as np

    from dl_course import linalg
    from dl_course.cli import load_study
    from dl_course.measures.curvature import krylov, spectrum
    from dl_course.train import supervised_task
    from dl_course.train.build import load_data, make_model

    if solver.startswith("host"):
        class HostSolver:  # the former path: a host callback to numpy's LAPACK
            @staticmethod
            def eigh_tridiagonal(d, e):
                return linalg.eigh(jnp.diag(d) + jnp.diag(e, 1) + jnp.diag(e, -1))

        krylov.linalg = HostSolver
    c = load_study("edge_of_stability").get_config().train
    data = load_data(c)
    task = supervised_task(make_model(c, data), c.loss, data.num_classes)
    batch = {"x": jnp.asarray(data.x_train), "y": jnp.asarray(data.y_train)}
    params = jax.vmap(lambda k: task.init(k, batch["x"][:1])[0])(jax.random.split(jax.random.key(0), runs))
    keys = jax.random.split(jax.random.key(1), runs)

    def loss_fn(p):
        return task.loss(p, {}, batch, jax.random.key(0), False)[0]

    def one_run(p, key, m):
        def point(p, i):
            p = jax.tree_util.tree_map(lambda a, g: a - 0.1 * g, p, jax.grad(loss_fn)(p))
            res = spectrum.hessian_eigenpairs(loss_fn, p, 1, key=jax.random.fold_in(key, i), num_iters=m)
            return p, res.eigenvalues[0]

        return jax.lax.scan(point, p, jnp.arange(points))[1]

    out, compiled = {}, {}
    for m in iters:
        fn = jax.jit(jax.vmap(lambda p, k, m=m: one_run(p, k, m)))
        t = time.perf_counter()
        compiled[m] = fn.lower(params, keys).compile()
        out[m] = {"compile_s": time.perf_counter() - t, "run_s": []}
        jax.block_until_ready(compiled[m](params, keys))
    for _ in range(reps):  # the iteration counts interleaved
        for m in iters:
            t = time.perf_counter()
            jax.block_until_ready(compiled[m](params, keys))
            out[m]["run_s"].append(time.perf_counter() - t)
    return {m: {"compile_s": o["compile_s"], "run_s": float(np.median(o["run_s"]))} for m, o in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer runs and rounds (a smoke run)")
    ap.add_argument("--out", default="results/benchmarks/lanczos_cost.json")
    ap.add_argument("--worker", nargs=5, metavar=("SOLVER", "ITERS", "RUNS", "POINTS", "REPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        s, ms, r, p, reps = args.worker
        print(json.dumps(worker(s, [int(m) for m in ms.split(",")], int(r), int(p), int(reps))))
        return
    runs, points, rounds, reps = (4, 2, 1, 1) if args.quick else (16, 3, 2, 3)
    iters = (10, 20) if args.quick else (10, 20, 30)
    samples: dict = {}
    for _ in range(rounds):  # interleaved: every solver once per round
        for solver in SOLVERS:
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            if solver == "host_1thread":
                env["OPENBLAS_NUM_THREADS"] = "1"
            out = subprocess.run([sys.executable, __file__, "--worker", solver, ",".join(map(str, iters)), str(runs),
                                  str(points), str(reps)], env=env, capture_output=True, text=True, check=True)
            for m, r in json.loads(out.stdout.strip().splitlines()[-1]).items():
                samples.setdefault(f"{solver}_m{m}", []).append(r)
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from dl_course import results

    table = {k: {f: float(np.median([s[f] for s in v])) for f in ("compile_s", "run_s")} | {"samples": v}
             for k, v in samples.items()}
    for m in iters:
        for solver in SOLVERS:
            t = table[f"{solver}_m{m}"]
            per_hvp = t["run_s"] / (runs * points * m) * 1e3
            t["ms_per_hvp_and_run"] = per_hvp
            print(f"m={m:3d} {solver:13s} compile {t['compile_s']:5.2f} s  run {t['run_s'] * 1e3:8.1f} ms "
                  f"({per_hvp:.2f} ms per HVP and run)")
    for m in iters[1:]:
        for solver in SOLVERS:
            extra = table[f"{solver}_m{m}"]["run_s"] - table[f"{solver}_m{iters[0]}"]["run_s"]
            print(f"{solver:13s}: iterations {iters[0]} -> {m} add "
                  f"{extra / table[f'{solver}_m{iters[0]}']['run_s']:.2f}x"
                  f" the time of the first {iters[0]}")
    out = {"device": results.device_info(), "versions": results.package_versions(),
           "problem": {"model": "mlp 40-100-100-10 tanh", "loss": "mse", "examples": 1000, "runs": runs,
                       "evaluation_points_per_scan": points, "dtype": "float32"},
           "method": "one process per measurement, interleaved; median over rounds of the median of reps calls",
           "rounds": rounds, "reps": reps, "results": table,
           "host_load_average_1_5_15_min": list(os.getloadavg()), "quick": args.quick}
    results.write_json(ROOT / args.out, out)


if __name__ == "__main__":
    main()
