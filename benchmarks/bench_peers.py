"""Benchmark: dl_course against the tools a user would pick instead (PyTorch, PyHessian, plain JAX).

(a) Training grids, compile excluded, every run trained for the same steps:

* compute-bound: 16 MLPs 40-512-512-10 (seeds 0-3 x learning rates 0.003/0.01/0.03/0.1), SGD with
  momentum 0.9, batch 128, 2000 steps on MNIST-1D (4000 training examples);
* dispatch-bound: 64 MLPs 40-64-64-10 (seeds 0-15 x the same rates), 500 steps (the sweep and the
  i.i.d. floor also at 100 steps: per-step and fixed costs apart, ``SHORT``; and the i.i.d. floor
  timed over the sweep's whole work: initialisation from the seeds and every run's evaluation on
  the training and test sets before and after training, which the sweep's time includes);

each by ``dl_course.train.sweep`` (with the default epoch order, the sort-free ``index_shuffle``, and
with ``shuffle = "permutation"``, ``jax.random.permutation``), a PyTorch eager loop (one model after another),
``torch.func.vmap`` over stacked parameters (``functional_call``), and a ~120-line hand-written
JAX loop (vmap over runs + sharding over devices, ``peers_jax.handwritten``), and the same loop
with i.i.d. minibatch indices (no epoch order: a floor for any vmapped JAX loop of the model). Also the engine's
model FLOP/s (6 x batch x weights per step and run) as a fraction of the dense float32 matmul
FLOP/s at the model's shapes, measured in the same run.

(b) λmax to a true relative error 1e-3 on the edge-of-stability problem (40-100-100-10 tanh MLP,
MSE, 1000 MNIST-1D examples, float32, trained 1000 GD steps at η = 0.15 so that λmax ≈ 2/η and the
top eigenvalues cluster) by ``dl_course`` Lanczos and by PyHessian (power iteration), same
weights, same data: HVPs to the true 1e-3 (reference: float64 Lanczos, 150 iterations), HVPs and
seconds until each stopping rule fires, with the true error there. PyHessian stops when the
estimate changes by less than ``tol`` relatively; Lanczos is reported with its certified rule
(Ritz residual / estimate ≤ tol) and with PyHessian's rule applied to its Ritz values.

Protocol: one process per measurement, the measurements interleaved over ``--rounds`` rounds,
medians reported; only ratios from one run count (the machine may be shared). Writes
``results/benchmarks/peers.json``. Run: ``python benchmarks/bench_peers.py [--steps-scale 0.025]``
(a smaller scale is a smoke run, not the benchmark).

Install the peers (an optional extra; PyTorch's CPU wheel):
``pip install -e ".[bench]"`` (torch 2.13.0 and pyhessian beside jax), or, keeping torch out of the
JAX environment, ``python -m venv .venv-bench && .venv-bench/bin/pip install torch==2.13.0
pyhessian`` and ``--torch-python .venv-bench/bin/python`` (the torch workers need neither jax nor
dl_course: data and weights are handed over in an ``.npz`` file).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

LRS = (0.003, 0.01, 0.03, 0.1)
GRIDS = {"compute_bound": {"width": 512, "seeds": 4, "steps": 2000},
         "dispatch_bound": {"width": 64, "seeds": 16, "steps": 500}}
TRAINERS = ("jax_sweep", "jax_sweep_permutation", "jax_handwritten", "jax_handwritten_iid", "torch_eager",
            "torch_vmap")
TOL = 1e-3
#: The dispatch-bound grid is also timed at 1/SHORT of its steps (sweep and i.i.d. floor): the
#: difference gives each one's per-step cost, the rest its fixed cost (the sweep's initial and
#: final evaluation of every run on the train and test sets, initialization, the result).
SHORT = 5
TARGETS = {"compute_bound": "sweep >= 0.98x the hand-written JAX loop, >= 85% of matmul FLOP/s",
           "dispatch_bound": "sweep >= 0.95x the hand-written i.i.d. floor (>= 10x torch eager on the 2-core CPU)",
           "lambda_max": "Lanczos HVPs <= 1/3 of PyHessian's and >= 2x faster"}


def write_inputs(tmp: Path, quick_train_steps: int) -> tuple[Path, Path]:
    """MNIST-1D for the grids, and the λmax problem's trained weights with its reference λmax."""
    import jax
    import numpy as np

    from dl_course import measures
    from dl_course.cli import load_study
    from dl_course.train import default_config, sweep
    from dl_course.train.build import load_data

    data = load_data(default_config())
    grid_data = tmp / "grid_data.npz"
    np.savez(grid_data, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)

    c = load_study("edge_of_stability").get_config().train
    c.steps, c.eval_every, c.seeds, c.learning_rates = quick_train_steps, quick_train_steps, [0], [0.15]
    res = sweep(c)
    eos = load_data(c)
    layers = [res.params[f"Dense_{i}"] for i in range(len(res.params))]
    weights = {f"kernel_{i}": np.asarray(l["kernel"][0], np.float32) for i, l in enumerate(layers)}
    weights.update({f"bias_{i}": np.asarray(l["bias"][0], np.float32) for i, l in enumerate(layers)})
    with jax.enable_x64(True):  # the reference: float64 Lanczos, 150 iterations (residual reported)
        import jax.numpy as jnp

        x, y = jnp.asarray(eos.x_train, jnp.float64), jnp.asarray(eos.y_train)
        p = [(jnp.asarray(weights[f"kernel_{i}"], jnp.float64), jnp.asarray(weights[f"bias_{i}"], jnp.float64))
             for i in range(len(layers))]

        def loss(q):
            h = x
            for w, b in q[:-1]:
                h = jnp.tanh(h @ w + b)
            return 0.5 * jnp.mean(jnp.sum((h @ q[-1][0] + q[-1][1] - jax.nn.one_hot(y, 10)) ** 2, -1))

        ref = jax.jit(lambda q: measures.hessian_eigenpairs(loss, q, 1, key=jax.random.key(9), num_iters=150))(p)
    lam_path = tmp / "lambda_problem.npz"
    np.savez(lam_path, x_train=eos.x_train, y_train=eos.y_train, width=c.model_options.width,
             lambda_ref=float(ref.eigenvalues[0]), lambda_ref_residual=float(ref.residuals[0]), **weights)
    return grid_data, lam_path


def run_worker(python: str, module: str, name: str, payload: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([python, str(HERE / module), name, json.dumps(payload)], env=env, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    return None if not xs else xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps-scale", type=float, default=1.0, help="multiply the grids' steps (smoke runs)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--torch-python", default=sys.executable, help="interpreter with torch and pyhessian")
    ap.add_argument("--skip-torch", action="store_true", help="the JAX measurements only")
    ap.add_argument("--lambda-train-steps", type=int, default=1000)
    ap.add_argument("--only", default="compute_bound,dispatch_bound,lambda_max", help="groups to run")
    ap.add_argument("--out", default="results/benchmarks/peers.json")
    args = ap.parse_args()
    from dl_course import results

    samples: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        grid_data, lam_data = write_inputs(Path(tmp), args.lambda_train_steps)
        jobs = []
        only = set(args.only.split(","))
        for grid, g in ((k, v) for k, v in GRIDS.items() if k in only):
            runs = [[s, lr] for s in range(g["seeds"]) for lr in LRS]
            payload = {"data": str(grid_data), "width": g["width"], "batch": 128, "runs": runs,
                       "steps": max(1, round(g["steps"] * args.steps_scale))}
            for trainer in TRAINERS:
                if not (args.skip_torch and trainer.startswith("torch")):
                    jobs.append((grid, trainer, payload, trainer))
            if grid == "compute_bound":
                jobs.append((grid, "jax_matmul_peak", payload, "jax_matmul_peak"))
            else:  # the same at 1/SHORT of the steps: per-step cost and fixed cost apart
                for trainer in ("jax_sweep", "jax_handwritten_iid"):
                    jobs.append((grid, trainer, {**payload, "steps": max(1, payload["steps"] // SHORT)},
                                 trainer + "_short"))
                jobs.append((grid, "jax_handwritten_iid_same_work", payload, "jax_handwritten_iid_same_work"))
        lam_payload = {"data": str(lam_data), "tol": TOL, "max_iter": 1000, "seed": 0}
        if "lambda_max" in only:
            jobs.append(("lambda_max", "jax_lanczos", {**lam_payload, "max_iter": 150}))
            if not args.skip_torch:
                jobs.append(("lambda_max", "pyhessian", lam_payload))
        for r in range(args.rounds):
            for group, name, payload, label in jobs:
                torch_side = name.startswith("torch") or name == "pyhessian"
                python = args.torch_python if torch_side else sys.executable
                module = "peers_torch.py" if torch_side else "peers_jax.py"
                out = run_worker(python, module, name, {**payload, "seed": r} if group == "lambda_max" else payload)
                samples.setdefault(group, {}).setdefault(label, []).append(out)
                print(f"round {r}: {group:14s} {label:16s} {json.dumps(out)[:160]}", flush=True)

    summary: dict = {}
    for grid, g in ((k, v) for k, v in GRIDS.items() if k in samples):
        t = {name: median([s["seconds"] for s in samples[grid][name]]) for name in TRAINERS if name in samples[grid]}
        steps = max(1, round(g["steps"] * args.steps_scale))
        row = {"seconds": t, "runs": g["seeds"] * len(LRS), "steps": steps, "width": g["width"],
               "speedup_over_torch_eager": {k: ratio(t.get("torch_eager"), v) for k, v in t.items()},
               "sweep_over_handwritten_jax_speed": ratio(t.get("jax_handwritten"), t.get("jax_sweep")),
               "sweep_over_handwritten_iid_floor_speed": ratio(t.get("jax_handwritten_iid"), t.get("jax_sweep")),
               "sweep_permutation_over_handwritten_jax_speed": ratio(t.get("jax_handwritten"),
                                                                     t.get("jax_sweep_permutation"))}
        if grid == "compute_bound":
            weights = 40 * 512 + 512 * 512 + 512 * 10
            flops = {k: row["runs"] * steps * 6 * 128 * weights / t[k] for k in ("jax_sweep", "jax_sweep_permutation")
                     if k in t}
            peak = median([s["gflops"] for s in samples[grid]["jax_matmul_peak"]]) * 1e9
            row.update({"sweep_model_gflops": flops["jax_sweep"] / 1e9, "matmul_gflops": peak / 1e9,
                        "fraction_of_matmul_rate": flops["jax_sweep"] / peak,
                        "fraction_of_matmul_rate_permutation": ratio(flops.get("jax_sweep_permutation"), peak)})
        else:
            short = {k: median([x["seconds"] for x in samples[grid][k + "_short"]])
                     for k in ("jax_sweep", "jax_handwritten_iid") if k + "_short" in samples[grid]}
            n_short = max(1, steps // SHORT)
            if len(short) == 2 and steps > n_short:  # t(steps) = fixed + steps * per_step, from two lengths
                per = {k: (t[k] - short[k]) / (steps - n_short) for k in short}
                row.update({"seconds_short": short, "steps_short": n_short,
                            "per_step_ms": {k: 1e3 * v for k, v in per.items()},
                            "fixed_seconds": {k: t[k] - steps * per[k] for k in per},
                            "sweep_over_handwritten_iid_floor_per_step_speed": ratio(per["jax_handwritten_iid"],
                                                                                    per["jax_sweep"])})
            if "jax_handwritten_iid_same_work" in samples[grid]:
                same = median([x["seconds"] for x in samples[grid]["jax_handwritten_iid_same_work"]])
                row.update({"seconds_iid_floor_same_work": same,
                            "sweep_over_handwritten_iid_floor_same_work_speed": ratio(same, t.get("jax_sweep"))})
        row["target"] = TARGETS[grid]
        summary[grid] = row
    lam = {name: {k: median([s.get(k) for s in v]) for k in v[0]} for name, v in samples.get("lambda_max", {}).items()}
    lz, ph = lam.get("jax_lanczos", {}), lam.get("pyhessian", {})
    summary["lambda_max"] = {} if not lam else {
        **lam, "tolerance": TOL,
        "hvp_ratio_lanczos_over_pyhessian_oracle": ratio(lz.get("hvps_oracle"), ph.get("hvps_oracle")),
        "hvp_ratio_lanczos_certified_over_pyhessian_stop": ratio(lz.get("hvps_stop"), ph.get("hvps_stop")),
        "hvp_ratio_same_rule": ratio(lz.get("hvps_stop_relative_change"), ph.get("hvps_stop")),
        "time_ratio_pyhessian_over_lanczos": ratio(ph.get("seconds_to_stop"), lz.get("seconds_to_stop")),
        "target": TARGETS["lambda_max"]}
    versions = results.package_versions()
    if not args.skip_torch:  # the peers' versions, from the interpreter that ran them
        probe = "import torch, importlib.metadata as m; print(torch.__version__, m.version('pyhessian'))"
        found = subprocess.run([args.torch_python, "-c", probe], capture_output=True, text=True).stdout.split()
        versions.update(dict(zip(("torch", "pyhessian"), found)))
    out = {"device": results.device_info(), "versions": versions, "steps_scale": args.steps_scale,
           "rounds": args.rounds, "protocol": "one process per measurement, interleaved; medians over rounds",
           "summary": summary, "samples": samples, "host_load_average_1_5_15_min": list(os.getloadavg())}
    for grid in (g for g in GRIDS if g in summary):
        s = summary[grid]
        line = ", ".join(f"{k} {v:.2f}s ({s['speedup_over_torch_eager'][k] or float('nan'):.2f}x torch eager)"
                         for k, v in s["seconds"].items())
        print(f"{grid}: {line}; sweep/hand-written speed {s['sweep_over_handwritten_jax_speed'] or float('nan'):.2f} "
              f"(i.i.d. floor {s['sweep_over_handwritten_iid_floor_speed'] or float('nan'):.2f}; permutation "
              f"{s['sweep_permutation_over_handwritten_jax_speed'] or float('nan'):.2f})")
        if "per_step_ms" in s:
            print(f"  per step {s['per_step_ms']['jax_sweep']:.2f} ms (sweep) vs "
                  f"{s['per_step_ms']['jax_handwritten_iid']:.2f} ms (i.i.d. floor): per-step speed "
                  f"{s['sweep_over_handwritten_iid_floor_per_step_speed']:.2f}; fixed "
                  f"{s['fixed_seconds']['jax_sweep']:.2f} s vs {s['fixed_seconds']['jax_handwritten_iid']:.2f} s")
        if "seconds_iid_floor_same_work" in s:
            print(f"  i.i.d. floor over the sweep's whole work (init, evaluations before and after) "
                  f"{s['seconds_iid_floor_same_work']:.2f} s: sweep speed "
                  f"{s['sweep_over_handwritten_iid_floor_same_work_speed']:.2f}")
        if "fraction_of_matmul_rate" in s:
            print(f"  sweep {s['sweep_model_gflops']:.1f} GFLOP/s = {s['fraction_of_matmul_rate']:.0%} of matmul "
                  f"{s['matmul_gflops']:.1f} GFLOP/s")
    if lam:
        print(f"lambda_max: {json.dumps(summary['lambda_max'], default=str)}")
    results.write_json(ROOT / args.out, out)


if __name__ == "__main__":
    main()
