"""Benchmark: cost of curvature measures, Lanczos vs power iteration, and tracking overhead.

Prints ratios measured in one run (only ratios from the same run count on a noisy machine) and
writes ``results/benchmarks/curvature.json``. On a CPU host the runs are vmapped on one device
(the ratios are what matter). Run: ``python benchmarks/bench_curvature.py [--quick]``. Setting: the
edge-of-stability study's default problem — full-batch GD, MSE, a
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
from dl_course.cli import load_study  # noqa: E402
from dl_course.measures.curvature.krylov import lanczos, power_iteration  # noqa: E402
from dl_course.train import supervised_task, sweep  # noqa: E402
from dl_course.train.build import load_data, make_model  # noqa: E402

TOL = 1e-3
ITERS = (10, 20)  # Lanczos iterations per evaluation of the tracker


def config_for(steps: int):
    """The edge-of-stability study's default problem (its engine config, ``config.train``), with a
    16-run grid and ``steps`` steps."""
    c = load_study("edge_of_stability").get_config().train
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


# ------------------------------------------------------------------------------------------------
# Curvature beyond λmax (issue 19): randomized traces, K-FAC vs the exact GGN, per-layer λmax.


def beyond_lambda_max(model, params, x, y, *, loss: str = "mse", num_classes: int = 10,
                      budgets=(30, 60, 120), reps: int = 20, lanczos_iters: int = 30, seed: int = 0) -> dict:
    """Ratios measured in one run at ``params`` of the flax ``model`` (Dense layers) on ``(x, y)``:

    1. relative RMS error of Hutchinson, Hutch++ and XTrace over ``reps`` replicates at equal HVP
       budgets against the exact trace (sum of the exact diagonal, one HVP per parameter);
    2. K-FAC vs exact GGN: seconds of one K-FAC product (factors given) over one GGN product, the
       one-off factor cost over one GGN product, and |cos| between the top eigenvector of K-FAC
       (closed form from the factors) and that of the GGN (``lanczos_iters`` Lanczos steps);
    3. per-layer vs full λmax: seconds of Lanczos on every layer block over Lanczos on the full
       Hessian (same iterations), and the values (each layer's λmax ≤ the full one).
    """
    apply = lambda p, xb: model.apply({"params": p}, xb)  # noqa: E731
    target = jax.nn.one_hot(y, num_classes, dtype=x.dtype) if loss == "mse" and num_classes else y
    if loss == "mse":
        loss_fn = lambda p: 0.5 * jnp.mean(jnp.sum((apply(p, x) - target) ** 2, -1))  # noqa: E731
        ggn = lambda p, v: measures.mse_ggn_vp(lambda q: apply(q, x), p, v)  # noqa: E731
    else:
        def loss_fn(p):
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(apply(p, x)), y[:, None], 1))

        ggn = lambda p, v: measures.cross_entropy_ggn_vp(lambda q: apply(q, x), p, v)  # noqa: E731
    flat, unravel = ravel_pytree(params)
    d = int(flat.size)
    key = jax.random.key(seed)

    # 1. Traces at equal budgets.
    exact = float(jnp.sum(ravel_pytree(jax.jit(lambda p: measures.hessian_diagonal(
        loss_fn, p, exact=True, batch_size=64))(params))[0]))
    estimators = {
        "hutchinson": lambda p, k, m: measures.hessian_trace(loss_fn, p, key=k, num_samples=m)[0],
        "hutchpp": lambda p, k, m: measures.hutchpp_trace(loss_fn, p, key=k, num_matvecs=m),
        "xtrace": lambda p, k, m: measures.xtrace(loss_fn, p, key=k, num_matvecs=m),
    }
    keys = jax.random.split(key, reps)
    traces = {"exact_trace": exact, "replicates": reps}
    for m in budgets:
        row = {}
        for name, est in estimators.items():
            vals = np.asarray(jax.jit(jax.vmap(lambda k: est(params, k, m)))(keys), np.float64)
            row[name] = float(np.sqrt(np.mean((vals - exact) ** 2)) / abs(exact))
        row["hutchinson_over_hutchpp"] = row["hutchinson"] / row["hutchpp"]
        row["hutchinson_over_xtrace"] = row["hutchinson"] / row["xtrace"]
        traces[f"rel_rms_error_{m}_hvps"] = row

    # 2. K-FAC vs the exact GGN.
    fac_fn = jax.jit(lambda p: measures.kfac_factors(model, p, x, loss=loss if loss == "mse" else "cross_entropy"))
    fac = fac_fn(params)
    v = unravel(jax.random.normal(key, flat.shape, flat.dtype))
    kfac_mv = jax.jit(lambda f, v: measures.kfac_operator(f)(v))
    ggn_mv = jax.jit(ggn)
    t_ggn, t_kfac = median_time(ggn_mv, params, v), median_time(kfac_mv, fac, v)
    t_factors = median_time(fac_fn, params, reps=3)
    eig = measures.kfac_eigen(fac)
    lam = measures.kfac_eigenvalues(eig)
    best = max(lam, key=lambda k: float(jnp.max(lam[k])))
    kfac_lambda, kfac_top = measures.kfac_top_eigenvector(eig, params)
    ggn_top = measures.operator_eigenpairs(lambda u: ggn(params, u), params, 1, key=key, num_iters=lanczos_iters)
    u = ravel_pytree(kfac_top)[0]
    w = ravel_pytree(jax.tree_util.tree_map(lambda t: t[0], ggn_top.eigenvectors))[0]
    cosine = float(jnp.abs(jnp.vdot(u, w)) / (jnp.linalg.norm(u) * jnp.linalg.norm(w)))
    kfac_out = {"kfac_matvec_over_ggn_matvec": t_kfac / t_ggn, "factors_over_ggn_matvec": t_factors / t_ggn,
                "ggn_matvec_s": t_ggn, "top_eigenvector_abs_cosine": cosine,
                "kfac_lambda_max": float(kfac_lambda), "ggn_lambda_max": float(ggn_top.eigenvalues[0]),
                "kfac_top_layer": best}

    # 3. Per-layer vs full λmax.
    full = jax.jit(lambda p, k: measures.top_eigenvalues(loss_fn, p, 1, key=k, num_iters=lanczos_iters)[0])
    layers = jax.jit(lambda p, k: measures.layer_top_eigenvalues(loss_fn, p, 1, key=k, num_iters=lanczos_iters))
    t_full, t_layers = median_time(full, params, key, reps=3), median_time(layers, params, key, reps=3)
    per_layer = {"layers_over_full_time": t_layers / t_full, "num_layers": len(params),
                 "full_lambda_max": float(full(params, key)[0]),
                 "layer_lambda_max": {k: float(v[0]) for k, v in layers(params, key).items()}}
    return {"params": d, "examples": int(x.shape[0]), "loss": loss, "traces": traces, "kfac_vs_ggn": kfac_out,
            "per_layer_lambda_max": per_layer}


def main_beyond() -> None:
    """``python benchmarks/bench_curvature.py --beyond-lambda-max [--quick] [--steps N]``: the
    edge-of-stability problem trained ``--steps`` full-batch GD steps (seed 0, η = 0.1), then
    :func:`beyond_lambda_max`; ``--quick`` uses a 40-16-16-10 MLP on 200 examples (a smoke run)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--beyond-lambda-max", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--out", default="results/benchmarks/curvature_beyond_lambda_max.json")
    args = ap.parse_args()
    config = config_for(args.steps)
    config.seeds, config.learning_rates = [0], [0.1]
    config.eval_every = min(config.eval_every, args.steps)
    if args.quick:
        config.model_options.width, config.dataset_options.num_train = 16, 200
    res = sweep(config)
    data = load_data(config)
    model = make_model(config, data)
    params = jax.tree_util.tree_map(lambda t: jnp.asarray(t[0]), res.params)
    x = jnp.asarray(data.x_train).reshape((data.x_train.shape[0], -1))
    out = beyond_lambda_max(model, params, x, jnp.asarray(data.y_train), loss=config.loss,
                            num_classes=data.num_classes, budgets=(12, 30) if args.quick else (30, 60, 120),
                            reps=5 if args.quick else 20)
    out.update(device=results.device_info(), steps=args.steps, quick=args.quick,
               host_load_average_1_5_15_min=list(os.getloadavg()))
    for m, row in ((k, v) for k, v in out["traces"].items() if k.startswith("rel_rms")):
        print(f"trace {m}: Hutchinson {row['hutchinson']:.3e}, Hutch++ {row['hutchpp']:.3e}, "
              f"XTrace {row['xtrace']:.3e} (Hutchinson/Hutch++ = {row['hutchinson_over_hutchpp']:.2f})")
    print("K-FAC vs GGN:", out["kfac_vs_ggn"])
    print("per-layer vs full λmax:", out["per_layer_lambda_max"])
    results.write_json(Path(args.out), out)


if __name__ == "__main__":
    if "--beyond-lambda-max" in sys.argv:
        main_beyond()
    else:
        main()
