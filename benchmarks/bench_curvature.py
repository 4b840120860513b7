"""Benchmark: cost of curvature measures, Lanczos vs power iteration, and tracking overhead.

Prints ratios measured in one run (only ratios from the same run count on a noisy machine) and
writes ``results/benchmarks/curvature.json``. On a CPU host the runs are vmapped on one device
(the ratios are what matter). Run: ``python benchmarks/bench_curvature.py [--quick]``. Setting: the edge-of-stability study's default problem — full-batch GD, MSE, a
40-100-100-10 tanh MLP (15k parameters) on 1000 MNIST-1D examples, float32.

1. tracking overhead: a 16-run sweep (4 seeds x 4 step sizes, 1000 steps or --steps) with and without
   ``sharpness_tracker`` measuring λmax (warm-started Lanczos on the full training loss) every 100
   steps, with 10 and with 20 Lanczos iterations; ratio of the wall times of the second (compiled)
   call of each. Target ≤ 1.2. Accuracy of the tracked values: errors against a 60-iteration
   tracker in the same sweep (seed 0), and the trackers' own Ritz-residual bounds; the default
   tracker (a block of the previous top two Ritz vectors) beside a single warm-start vector
   (``block_size=1``, the former tracker) at 20 iterations.
2. HVP cost over gradient cost (forward-over-reverse HVP vs ``jax.grad``, full batch, jitted,
   median of repeats): one call each, and 20 chained calls inside a ``lax.scan`` (the Lanczos
   situation), at the trained parameters of one run and for a wider MLP (40-512-512-10, 4000
   examples) at initialization. Target ≤ 2.0.
3. λmax to a true 1e-3 relative error (reference: 100-step Lanczos) by Lanczos (full
   reorthogonalization) vs power iteration, from the same random start, at the same point.
   Counted from each method's per-iteration estimates (Ritz values of the leading ``T_j`` /
   Rayleigh quotients): ``oracle`` = first iteration whose true error ≤ 1e-3; ``stop`` = first
   iteration where the certified stopping rule ``residual/estimate ≤ 1e-3`` fires (an eigenvalue
   lies within the residual; this rule cannot stop early, unlike "the estimate stopped
   changing"), with the true error there. Time: a jitted fixed-iteration run of each method with
   its ``stop`` iteration count (compile excluded). Target: Lanczos HVPs ≤ 1/2 of power's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402

# Full float32 matmuls on every backend (GPUs would otherwise use TF32, ~1e-3 relative error per
# product, the size of the tolerance measured below).
jax.config.update("jax_default_matmul_precision", "highest")
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

from dl_course import measures, results  # noqa: E402
from dl_course.measures.krylov import lanczos, power_iteration  # noqa: E402
from dl_course.cli import load_study  # noqa: E402
from dl_course.train import supervised_task, sweep  # noqa: E402
from dl_course.train.build import load_data, make_model  # noqa: E402

TOL = 1e-3
ITERS = (10, 20)  # Lanczos iterations per evaluation of the tracker


def config_for(steps: int):
    """The edge-of-stability study's default problem, with a 16-run grid and ``steps`` steps."""
    c = load_study("edge_of_stability").get_config()
    c.steps = steps
    c.eval_every = 100
    c.seeds = [0, 1, 2, 3]
    c.learning_rates = [0.05, 0.1, 0.15, 0.2]
    return c


def timed_sweep(config, hooks):
    sweep(config, hooks=hooks)  # compile; the second call reuses the cached program
    t = time.perf_counter()
    res = sweep(config, hooks=hooks)
    return time.perf_counter() - t, res


def median_time(fn, *args, reps: int = 7) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def hvp_over_grad(loss_fn, params, chain: int = 20) -> dict:
    """Times of one jitted gradient and one HVP (forward-over-reverse), and of ``chain`` of each
    applied in sequence inside one ``lax.scan`` (as in Lanczos; each gradient is taken at a
    point that depends on the previous one, so nothing is loop-invariant)."""
    flat, unravel = ravel_pytree(params)
    v = unravel(jax.random.normal(jax.random.key(1), flat.shape, flat.dtype))
    grad = jax.jit(jax.grad(loss_fn))
    hvp = jax.jit(lambda p, v: measures.hvp(loss_fn, p, v))
    shift = lambda p, c: jax.tree_util.tree_map(lambda a, b: a + 1e-6 * b, p, c)  # noqa: E731
    grads = jax.jit(lambda p, v: jax.lax.scan(
        lambda c, _: (jax.grad(loss_fn)(shift(p, c)), None), v, None, length=chain)[0])
    hvps = jax.jit(lambda p, v: jax.lax.scan(
        lambda c, _: (measures.hvp(loss_fn, p, c), None), v, None, length=chain)[0])
    t = {"grad_s": median_time(grad, params), "hvp_s": median_time(hvp, params, v),
         f"grad_x{chain}_s": median_time(grads, params, v), f"hvp_x{chain}_s": median_time(hvps, params, v)}
    t["ratio"] = t["hvp_s"] / t["grad_s"]
    t["ratio_in_loop"] = t[f"hvp_x{chain}_s"] / t[f"grad_x{chain}_s"]
    t["params"] = int(flat.size)
    return t


def lanczos_history(alphas: np.ndarray, betas: np.ndarray):
    """Top Ritz value and its residual bound |β_j s_j| after each iteration j = 1..m."""
    alphas, betas = np.asarray(alphas, np.float64), np.asarray(betas, np.float64)
    values, residuals = [], []
    for j in range(1, alphas.size + 1):
        t = np.diag(alphas[:j]) + np.diag(betas[: j - 1], 1) + np.diag(betas[: j - 1], -1)
        theta, s = np.linalg.eigh(t)
        values.append(theta[-1])
        residuals.append(abs(betas[j - 1] * s[-1, -1]))
    return np.asarray(values), np.asarray(residuals)


def first(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) + 1 if idx.size else None  # iterations = matvecs = HVPs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer steps (a smoke run, not the benchmark)")
    ap.add_argument("--out", default="results/benchmarks/curvature.json")
    ap.add_argument("--steps", type=int, default=1000, help="training steps of the tracked sweep "
                    "(more on a GPU, where 1000 steps take a fraction of a second)")
    args = ap.parse_args()
    steps = 300 if args.quick else args.steps
    max_power = 300 if args.quick else 3000
    config = config_for(steps)

    # 1. Tracking overhead in a 16-run sweep, for 10 and 20 Lanczos iterations per evaluation.
    t_plain, _ = timed_sweep(config, None)
    tracking = {"sweep_s": t_plain}
    for iters in ITERS:
        t, _ = timed_sweep(config, {"sharpness": measures.sharpness_tracker(num_iters=iters)})
        tracking[f"iters_{iters}"] = {"sweep_with_tracking_s": t, "ratio": t / t_plain}
    # Accuracy of the tracked values: both trackers beside a 60-iteration one, seed 0 only.
    hooks = {f"it{i}": measures.sharpness_tracker(num_iters=i, prefix=f"it{i}_") for i in ITERS + (60,)}
    hooks["it20one"] = measures.sharpness_tracker(num_iters=20, block_size=1, prefix="it20one_")
    tracking["iters_20_one_warm_vector"] = {}
    acc = sweep(config, seeds=[0], hooks=hooks)
    ref = acc.metrics["it60_lambda_max"][:, 1:]  # after step 0 (a cold start for everyone)
    for iters in ITERS + ("20one",):
        lam_i = acc.metrics[f"it{iters}_lambda_max"][:, 1:]
        bound = acc.metrics[f"it{iters}_lambda_max_residual"][:, 1:] / np.abs(lam_i)
        err = np.abs(lam_i - ref) / np.abs(ref)
        tracking["iters_20_one_warm_vector" if iters == "20one" else f"iters_{iters}"].update({
            "median_rel_error_vs_60_iters": float(np.median(err)), "max_rel_error_vs_60_iters": float(np.max(err)),
            "median_rel_residual": float(np.median(bound)), "max_rel_residual": float(np.max(bound)),
            "error_within_residual_bound": bool(np.all(err <= bound + 1e-6))})

    # The trained point of the largest step size, seed 0 (at the edge of stability), for 2 and 3.
    run = int(np.argmax([g["learning_rate"] for g in acc.grid]))
    data = load_data(config)
    task = supervised_task(make_model(config, data), config.loss, data.num_classes)
    batch = {"x": jnp.asarray(data.x_train), "y": jnp.asarray(data.y_train)}
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x[run]), acc.params)
    loss_fn = lambda p: task.loss(p, {}, batch, jax.random.key(0), False)[0]  # noqa: E731
    flat, unravel = ravel_pytree(params)
    matvec = jax.jit(lambda v: ravel_pytree(measures.hvp(loss_fn, params, unravel(v)))[0])

    # 2. HVP cost over gradient cost, here and on a wider network with all 4000 examples.
    hvp_cost = {"edge_of_stability_problem": hvp_over_grad(loss_fn, params)}
    wide = config_for(steps)
    wide.model_options.width, wide.dataset_options.num_train = 512, 4000
    wide_data = load_data(wide)
    wide_task = supervised_task(make_model(wide, wide_data), wide.loss, wide_data.num_classes)
    wide_batch = {"x": jnp.asarray(wide_data.x_train), "y": jnp.asarray(wide_data.y_train)}
    wide_params, _ = wide_task.init(jax.random.key(0), wide_batch["x"][:1])
    hvp_cost["mlp_40_512_512_10_4000_examples"] = hvp_over_grad(
        lambda p: wide_task.loss(p, {}, wide_batch, jax.random.key(0), False)[0], wide_params)

    # 3. Lanczos vs power iteration to a true 1e-3 relative error.
    v0 = jax.random.normal(jax.random.key(2), flat.shape, flat.dtype)
    ref = jax.jit(lambda v: lanczos(matvec, v, 100))(jax.random.normal(jax.random.key(3), flat.shape))
    lam_ref = float(ref.ritz_values[-1])
    lz = jax.jit(lambda v: lanczos(matvec, v, 100))(v0)
    lz_vals, lz_res = lanczos_history(lz.alphas, lz.betas)
    pw = jax.jit(lambda v: power_iteration(matvec, v, max_power))(v0[None])
    pw_vals, pw_res = np.asarray(pw.history[0], np.float64), np.asarray(pw.residual_history[0], np.float64)
    methods = {}
    for name, vals, resid in (("lanczos", lz_vals, lz_res), ("power", pw_vals, pw_res)):
        err = np.abs(vals - lam_ref) / abs(lam_ref)
        stop = first(resid / np.abs(vals) <= TOL)
        methods[name] = {"hvps_oracle": first(err <= TOL), "hvps_stop": stop,
                         "true_rel_error_at_stop": None if stop is None else float(err[stop - 1]),
                         "max_iterations_run": int(vals.size)}
    # Runs of exactly ``hvps_stop`` matvecs (power iteration's final Rayleigh quotient costs one).
    runners = {"lanczos": lambda n: jax.jit(lambda v: lanczos(matvec, v, n).ritz_values[-1]),
               "power": lambda n: jax.jit(lambda v: power_iteration(matvec, v[None], n - 1).eigenvalues[0])}
    for name, make in runners.items():
        n = methods[name]["hvps_stop"]
        methods[name]["seconds_to_stop"] = None if n is None else median_time(make(n), v0, reps=3)

    def ratio(key):
        a, b = methods["lanczos"][key], methods["power"][key]
        return None if a is None or b is None else a / b

    out = {
        "device": results.device_info(),
        "versions": results.package_versions(),
        "problem": {"model": "mlp 40-100-100-10 tanh", "params": int(flat.size), "loss": "mse",
                    "examples": int(data.x_train.shape[0]), "dtype": "float32", "optimizer": "full-batch GD"},
        "tracking_overhead": {
            "runs": 16, "steps": steps, "eval_every": 100, "warm_started": True, **tracking,
            "target": "ratio <= 1.2"},
        "hvp_over_grad": {**hvp_cost, "target": "ratio <= 2.0",
                          "method": "forward-over-reverse (jvp of grad), full batch, median of 7"},
        "lambda_max": {"reference_100_step_lanczos": lam_ref, "learning_rate": acc.grid[run]["learning_rate"],
                       "tolerance": TOL, "stopping_rule": "ritz residual / estimate <= tol",
                       **methods,
                       "hvp_ratio_lanczos_over_power_oracle": ratio("hvps_oracle"),
                       "hvp_ratio_lanczos_over_power_stop": ratio("hvps_stop"),
                       "time_ratio_lanczos_over_power_stop": ratio("seconds_to_stop"),
                       "target": "hvp ratio <= 0.5"},
        "matmul_precision": "highest",
        "host_load_average_1_5_15_min": list(os.getloadavg()),  # CPU timings need this context
        "quick": args.quick,
    }
    print(f"devices: {out['device']['num_devices']} x {out['device']['device_kind']}")
    for iters in ITERS:
        t = tracking[f"iters_{iters}"]
        print(f"tracking overhead, {iters} Lanczos iterations every 100 steps: {t_plain:.1f}s -> "
              f"{t['sweep_with_tracking_s']:.1f}s = {t['ratio']:.3f}x; error vs 60 iterations: median "
              f"{t['median_rel_error_vs_60_iters']:.1e}, max {t['max_rel_error_vs_60_iters']:.1e}")
    t = tracking["iters_20_one_warm_vector"]
    print(f"one warm-start vector, 20 iterations: error vs 60 iterations: median "
          f"{t['median_rel_error_vs_60_iters']:.1e}, max {t['max_rel_error_vs_60_iters']:.1e}")
    for name, t in hvp_cost.items():
        print(f"HVP / grad ({name}, {t['params']} params): {t['hvp_s'] * 1e3:.2f} ms / "
              f"{t['grad_s'] * 1e3:.2f} ms = {t['ratio']:.2f}x; in a 20-step loop {t['ratio_in_loop']:.2f}x")
    for name, m in methods.items():
        print(f"{name:8s}: oracle {m['hvps_oracle']} HVPs, stop rule {m['hvps_stop']} HVPs "
              f"(true error {m['true_rel_error_at_stop']}), {m['seconds_to_stop']} s")
    print(f"Lanczos/power HVPs: oracle {ratio('hvps_oracle')}, stop {ratio('hvps_stop')}; "
          f"time {ratio('seconds_to_stop')}")
    results.write_json(Path(args.out), out)


if __name__ == "__main__":
    main()
