"""Benchmark: ``k`` Hessian-vector products at one point — forward-over-reverse vs linearize-once.

``hvp`` (forward-over-reverse, ``jax.jvp(jax.grad(L))``) recomputes the primal forward and backward
pass at ``θ`` in every product; ``linearized_hvp`` (``jax.linearize(jax.grad(L), θ)``) runs them
once and applies the linear map ``k`` times. Measured, as ratios to one jitted gradient:

* ``k`` gradient-descent steps inside one ``lax.scan`` (a gradient in a loop, the fair
  denominator for products in a loop: a single jitted gradient also pays a dispatch);
* ``k`` chained products inside one ``lax.scan`` (each product's input depends on the previous
  output, as in Lanczos), including the linearization itself, for ``k = 20``;
* a full ``hessian_eigenpairs`` call (Lanczos, 20 iterations) with each ``hvp_method``, for one
  run and vmapped over 16 runs (the sharpness tracker's situation);
* the compiled programs' temporary memory (``memory_analysis().temp_size_in_bytes``): what
  linearize's stored residuals cost.

Problems: the edge-of-stability study's (40-100-100-10 tanh MLP, MSE, 1000 MNIST-1D examples, 15k
parameters) and, unless ``--quick``, a wide MLP 40-512-512-10 on 4000 examples (289k parameters),
both float32 at initialization. Times are medians of ``--reps`` calls, the methods interleaved,
compile excluded. Writes ``results/benchmarks/hvp.json``. Run: ``python benchmarks/bench_hvp.py
[--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

from dl_course import measures, results  # noqa: E402
from dl_course.cli import load_study  # noqa: E402
from dl_course.measures.curvature.products import HVP_METHODS  # noqa: E402
from dl_course.train import supervised_task  # noqa: E402
from dl_course.train.build import load_data, make_model  # noqa: E402

K = 20


def problem(width: int, num_train: int):
    """``(loss_fn(params, batch), params, batch)`` of the edge-of-stability study's MLP."""
    c = load_study("edge_of_stability").get_config().train
    c.model_options.width, c.dataset_options.num_train = width, num_train
    data = load_data(c)
    task = supervised_task(make_model(c, data), c.loss, data.num_classes)
    batch = {"x": jnp.asarray(data.x_train), "y": jnp.asarray(data.y_train)}
    params, _ = task.init(jax.random.key(0), batch["x"][:1])
    return (lambda p, b: task.loss(p, {}, b, jax.random.key(0), False)[0]), params, batch


def interleaved_medians(fns: dict, args: dict, reps: int) -> dict:
    for name, f in fns.items():
        jax.block_until_ready(f(*args[name]))
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, f in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f(*args[name]))
            times[name].append(time.perf_counter() - t)
    return {name: float(np.median(t)) for name, t in times.items()}


def temp_bytes(fn, *args):
    try:
        return int(fn.lower(*args).compile().memory_analysis().temp_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None


def measure(loss, params, batch, reps: int, runs: int) -> dict:
    flat, unravel = ravel_pytree(params)
    v = unravel(jax.random.normal(jax.random.key(1), flat.shape, flat.dtype))

    def chained(method):
        def f(p, b, v):
            op = measures.hessian_operator(lambda q: loss(q, b), p, method)
            return jax.lax.scan(lambda c, _: (op(c), None), v, None, length=K)[0]

        return jax.jit(f)

    def lanczos(method):
        def f(p, b, key):
            return measures.hessian_eigenpairs(lambda q: loss(q, b), p, 1, key=key, num_iters=K,
                                               hvp_method=method).eigenvalues[0]

        return f

    stack = lambda t: jax.tree_util.tree_map(lambda x: jnp.stack([x] * runs), t)  # noqa: E731
    keys = jax.random.split(jax.random.key(2), runs)
    def grad_chain(p, b):  # K gradient-descent steps in one scan: a gradient inside a loop
        step = lambda q, _: (jax.tree_util.tree_map(lambda a, g: a - 1e-6 * g, q, jax.grad(loss)(q, b)), None)  # noqa: E731
        return jax.lax.scan(step, p, None, length=K)[0]

    fns = {"grad": jax.jit(jax.grad(loss)), f"grad_x{K}": jax.jit(grad_chain)}
    args = {"grad": (params, batch), f"grad_x{K}": (params, batch)}
    for m in HVP_METHODS:
        fns[f"{m}_x{K}"], args[f"{m}_x{K}"] = chained(m), (params, batch, v)
        fns[f"lanczos_{m}"], args[f"lanczos_{m}"] = jax.jit(lanczos(m)), (params, batch, keys[0])
        fns[f"lanczos_{m}_vmap{runs}"] = jax.jit(jax.vmap(lanczos(m), in_axes=(0, None, 0)))
        args[f"lanczos_{m}_vmap{runs}"] = (stack(params), batch, keys)
    t = interleaved_medians(fns, args, reps)
    out = {"params": int(flat.size), "examples": int(batch["x"].shape[0]), "seconds": t}
    g = t["grad"]
    for m in HVP_METHODS:
        out[m] = {f"hvp_over_grad_in_{K}_chain": t[f"{m}_x{K}"] / (K * g),
                  f"hvp_chain_over_grad_chain_{K}": t[f"{m}_x{K}"] / t[f"grad_x{K}"],
                  f"lanczos_{K}_over_grad_chain_{K}": t[f"lanczos_{m}"] / t[f"grad_x{K}"],
                  f"lanczos_{K}_over_grad": t[f"lanczos_{m}"] / g,
                  f"lanczos_{K}_vmap{runs}_over_grad": t[f"lanczos_{m}_vmap{runs}"] / (runs * g),
                  "temp_bytes_lanczos": temp_bytes(fns[f"lanczos_{m}"], *args[f"lanczos_{m}"])}
    out["forward_over_reverse_over_linearize"] = {
        "chain": t[f"forward_over_reverse_x{K}"] / t[f"linearize_x{K}"],
        "lanczos": t["lanczos_forward_over_reverse"] / t["lanczos_linearize"],
        f"lanczos_vmap{runs}": t[f"lanczos_forward_over_reverse_vmap{runs}"] / t[f"lanczos_linearize_vmap{runs}"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the small problem only, fewer repeats")
    ap.add_argument("--out", default="results/benchmarks/hvp.json")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    reps = 3 if args.quick else args.reps
    problems = {"edge_of_stability_mlp_40_100_100_10_1000_examples": (100, 1000, 16)}
    if not args.quick:
        problems["mlp_40_512_512_10_4000_examples"] = (512, 4000, 4)
    out = {"device": results.device_info(), "versions": results.package_versions(), "k": K,
           "method": "medians of interleaved calls, compile excluded; ratios to one jitted gradient"}
    for name, (width, n, runs) in problems.items():
        r = measure(*problem(width, n), reps=reps, runs=runs)
        out[name] = r
        print(f"{name} ({r['params']} params):")
        for m in HVP_METHODS:
            x = r[m]
            print(f"  {m:21s}: HVP/grad in a {K}-chain {x[f'hvp_over_grad_in_{K}_chain']:.2f}, Lanczos({K})/grad "
                  f"{x[f'lanczos_{K}_over_grad']:.1f} (vmapped x{runs}: {x[f'lanczos_{K}_vmap{runs}_over_grad']:.1f} "
                  f"per run), temp memory {x['temp_bytes_lanczos']} B; in loops: HVP chain / gradient chain "
                  f"{x[f'hvp_chain_over_grad_chain_{K}']:.2f}, Lanczos({K}) / gradient chain "
                  f"{x[f'lanczos_{K}_over_grad_chain_{K}']:.2f}")
        print(f"  forward-over-reverse / linearize: {r['forward_over_reverse_over_linearize']}")
    out["host_load_average_1_5_15_min"] = list(os.getloadavg())
    out["quick"] = args.quick
    results.write_json(Path(args.out), out)


if __name__ == "__main__":
    main()
