"""The JAX side of ``bench_peers.py``: the engine, a hand-written vmap + shard loop, Lanczos.

Usage (by ``bench_peers.py``): ``python peers_jax.py WORKER ARGS_JSON``; one JSON line on stdout.

* ``jax_sweep``: ``dl_course.train.sweep`` on the grid with the default epoch order (the sort-free
  ``index_shuffle``; compile excluded: the timed call reuses the cached programs of a first call),
  via ``bench_sweep.py``'s set-up.
* ``jax_sweep_permutation``: the same with ``shuffle = "permutation"`` (the epoch orders by
  ``jax.random.permutation``, a sort per epoch).
* ``jax_handwritten``: what a user would write without the engine, in ~120 lines (below): the
  same MLP, loss, momentum rule and per-epoch minibatch permutations, ``vmap`` over runs, the run
  axis sharded over every device, one jitted ``lax.scan`` over epochs and steps, buffers donated.
* ``jax_handwritten_iid``: the hand-written loop with minibatch indices drawn i.i.d. with
  replacement (no epoch order, no sort): a floor for any vmapped JAX loop of this model, not a
  protocol a study would use.
* ``jax_handwritten_iid_same_work``: the i.i.d. floor timed over the work of the sweep's whole call
  (parameters initialised from the seeds, every run's loss and accuracy on the training and test
  sets before and after training, brought to the host), not over the training scan alone.
* ``jax_matmul_peak``: dense float32 matmul FLOP/s at the compute-bound model's shapes
  (``bench_sweep.matmul_flops``), for the engine's fraction of it.
* ``jax_lanczos``: λmax of the λmax problem by ``dl_course`` Lanczos: HVPs until the certified
  stopping rule (Ritz residual / estimate ≤ tol) and PyHessian's rule (relative change of the
  estimate ≤ tol) fire, HVPs until the true error ≤ tol, and seconds for a jitted run of the
  certified count (compile excluded; the linearization included).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


# ------------------------------------------------------------------------------------------------
# The hand-written loop (no dl_course): vmap over runs + sharding over devices.


def handwritten(args: dict) -> dict:
    import jax

    jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)  # one device per core on CPU
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    z = np.load(args["data"])
    x, y = jnp.asarray(z["x_train"], jnp.float32), jnp.asarray(z["y_train"], jnp.int32)
    n, b, steps, width = x.shape[0], args["batch"], args["steps"], args["width"]
    iid = args.get("order", "permutation") == "iid"
    per_epoch = n // b
    sizes = (x.shape[1], width, width, 10)

    def init(key):  # LeCun-normal kernels, zero biases (flax.linen.Dense's defaults)
        keys = jax.random.split(key, len(sizes) - 1)
        return [(jax.random.normal(k, (a, c)) / jnp.sqrt(a), jnp.zeros(c))
                for k, (a, c) in zip(keys, zip(sizes[:-1], sizes[1:]))]

    def apply(params, xb):
        for w, bias in params[:-1]:
            xb = jax.nn.relu(xb @ w + bias)
        w, bias = params[-1]
        return xb @ w + bias

    def loss(params, xb, yb):
        logp = jax.nn.log_softmax(apply(params, xb))
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    def train(params, mom, key, lr):
        def sgd_step(carry, idx):
            p, m = carry
            g = jax.grad(loss)(p, x[idx], y[idx])
            m = jax.tree.map(lambda m_, g_: 0.9 * m_ + g_, m, g)
            return (jax.tree.map(lambda p_, m_: p_ - lr * m_, p, m), m), None

        def batches(epoch, count):
            if iid:  # the floor: no epoch order at all, indices drawn with replacement
                return jax.random.randint(jax.random.fold_in(key, epoch), (count, b), 0, n)
            order = jax.random.permutation(jax.random.fold_in(key, epoch), n)
            return order[: count * b].reshape(count, b)

        def epoch(carry, e):
            return jax.lax.scan(sgd_step, carry, batches(e, per_epoch))[0], None

        full, rem = divmod(steps, per_epoch)
        carry = jax.lax.scan(epoch, (params, mom), jnp.arange(full))[0]
        if rem:
            carry = jax.lax.scan(sgd_step, carry, batches(full, rem))[0]
        return carry

    def metrics(params, xs, ys):  # mean cross-entropy and accuracy of one run on one set
        logits = apply(params, xs)
        logp = jax.nn.log_softmax(logits)
        return (-jnp.mean(jnp.take_along_axis(logp, ys[:, None], axis=1)),
                jnp.mean(jnp.argmax(logits, -1) == ys))

    def evaluate(params):  # every run on the whole training and test sets, as the sweep reports them
        return (jax.vmap(metrics, in_axes=(0, None, None))(params, x, y),
                jax.vmap(metrics, in_axes=(0, None, None))(params, x_test, y_test))

    runs = args["runs"]
    devices = jax.devices()
    pad = -len(runs) % len(devices)
    runs = runs + [runs[-1]] * pad  # a multiple of the device count; padding dropped after
    shard = NamedSharding(Mesh(np.asarray(devices), ("runs",)), PartitionSpec("runs"))
    seeds = jnp.asarray([s for s, _ in runs], jnp.uint32)
    lrs = jax.device_put(jnp.asarray([lr for _, lr in runs], jnp.float32), shard)
    init_all = jax.jit(jax.vmap(lambda s: init(jax.random.PRNGKey(s))), out_shardings=shard)
    params = init_all(seeds)
    mom = jax.tree.map(jnp.zeros_like, params)
    keys = jax.device_put(jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(s), 1))(seeds), shard)
    step = jax.jit(jax.vmap(train), donate_argnums=(0, 1), out_shardings=shard)
    compiled = step.lower(params, mom, keys, lrs).compile()
    if args.get("same_work"):
        # The sweep's whole call, by hand: parameters initialised from the seeds, every run evaluated
        # on the training and test sets before and after training, the numbers brought to the host.
        x_test, y_test = jnp.asarray(z["x_test"], jnp.float32), jnp.asarray(z["y_test"], jnp.int32)
        evaluate = jax.jit(evaluate)
        jax.block_until_ready(evaluate(params))  # compile excluded, as for the sweep
        t0 = time.perf_counter()
        params = init_all(seeds)
        mom = jax.tree.map(jnp.zeros_like, params)
        before = evaluate(params)
        params, mom = compiled(params, mom, keys, lrs)
        jax.device_get((before, evaluate(params)))
        seconds = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        params, mom = jax.block_until_ready(compiled(params, mom, keys, lrs))
        seconds = time.perf_counter() - t0
    final = jax.vmap(loss, in_axes=(0, None, None))(params, x[:1000], y[:1000])[: len(runs) - pad]
    return {"seconds": seconds, "devices": len(devices), "final_losses": np.asarray(final).tolist()}


# ------------------------------------------------------------------------------------------------
# The engine, the matmul peak, and Lanczos.


def _engine_config(args: dict):
    from bench_sweep import config_for

    seeds = sorted({s for s, _ in args["runs"]})
    lrs = sorted({lr for _, lr in args["runs"]})
    c = config_for(args["width"], args["steps"], len(seeds))
    c.seeds, c.learning_rates = seeds, lrs
    if "shuffle" in args:
        c.shuffle = args["shuffle"]
    return c


def engine(args: dict) -> dict:
    import jax
    from bench_sweep import time_sweep  # sets up one CPU device per core before jax starts

    return {"seconds": time_sweep(_engine_config(args)), "devices": len(jax.devices())}


def matmul_peak(args: dict) -> dict:
    from bench_sweep import matmul_flops

    return {"gflops": matmul_flops(len(args["runs"]), args["batch"], args["width"], args["width"]) / 1e9}


def lanczos_lambda_max(args: dict) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from bench_curvature import first, lanczos_history
    from bench_hvp import interleaved_medians

    from dl_course import measures
    from dl_course.measures.curvature.krylov import lanczos
    from dl_course.measures.curvature.spectrum import flat_operator

    z = np.load(args["data"])
    x, y = jnp.asarray(z["x_train"], jnp.float32), jnp.asarray(z["y_train"], jnp.int32)
    depth = sum(1 for k in z.files if k.startswith("kernel_"))
    params = [(jnp.asarray(z[f"kernel_{i}"]), jnp.asarray(z[f"bias_{i}"])) for i in range(depth)]
    target = jax.nn.one_hot(y, 10)

    def loss(p):  # the engine's MSE on the tanh MLP: mean over examples of ½‖f − one_hot(y)‖²
        h = x
        for w, bias in p[:-1]:
            h = jnp.tanh(h @ w + bias)
        out = h @ p[-1][0] + p[-1][1]
        return 0.5 * jnp.mean(jnp.sum((out - target) ** 2, axis=-1))

    tol, lam_ref, max_iter = float(args["tol"]), float(z["lambda_ref"]), int(args["max_iter"])

    def run(params, v0, num_iters):
        matvec, _, _ = flat_operator(measures.hessian_operator(loss, params), params)
        return lanczos(matvec, v0, num_iters)

    flat = jnp.concatenate([jnp.ravel(a) for wb in params for a in wb])
    v0 = jax.random.normal(jax.random.key(args.get("seed", 0)), flat.shape, flat.dtype)
    res = jax.jit(run, static_argnums=2)(params, v0, max_iter)
    vals, resid = lanczos_history(res.alphas, res.betas)
    err = np.abs(vals - lam_ref) / abs(lam_ref)
    stop = first(resid / np.abs(vals) <= tol)
    change = np.abs(np.diff(vals)) / (np.abs(vals[:-1]) + 1e-6)  # PyHessian's rule
    stop_change = first(change < tol)
    stop_change = None if stop_change is None else stop_change + 1
    out = {"hvps_oracle": first(err <= tol), "hvps_stop": stop, "hvps_stop_relative_change": stop_change,
           "true_rel_error_at_stop": None if stop is None else float(err[stop - 1]),
           "true_rel_error_at_stop_relative_change": None if stop_change is None else float(err[stop_change - 1]),
           "max_iterations_run": int(vals.size)}
    if stop is not None:
        fn = jax.jit(lambda p, v: run(p, v, stop).ritz_values[-1])
        out["seconds_to_stop"] = interleaved_medians({"l": fn}, {"l": (params, v0)}, reps=3)["l"]
    return out


def handwritten_iid(args: dict) -> dict:
    return handwritten({**args, "order": "iid"})


def handwritten_iid_same_work(args: dict) -> dict:
    return handwritten({**args, "order": "iid", "same_work": True})


def engine_permutation(args: dict) -> dict:
    return engine({**args, "shuffle": "permutation"})


WORKERS = {"jax_sweep": engine, "jax_sweep_permutation": engine_permutation, "jax_handwritten": handwritten,
           "jax_handwritten_iid": handwritten_iid, "jax_handwritten_iid_same_work": handwritten_iid_same_work,
           "jax_matmul_peak": matmul_peak,
           "jax_lanczos": lanczos_lambda_max}

if __name__ == "__main__":
    name, payload = sys.argv[1], json.loads(sys.argv[2])
    if name not in WORKERS:
        raise ValueError(f"unknown worker {name!r}; valid: {sorted(WORKERS)}")
    print(json.dumps(WORKERS[name](payload)))
