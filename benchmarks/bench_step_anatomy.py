"""Benchmark: where the compute-bound engine's step time goes against the hand-written loop (#33 part 2).

The compute-bound grid of ``bench_peers.py`` (16 MLPs 40-512-512-10, momentum 0.9, batch 128,
MNIST-1D's 4000 training examples, float32, vmapped over runs), ``--steps`` steps as one jitted
``lax.scan``, compile excluded, each variant changing ONE thing from the one before:

* ``per_step_guard``: ``dl_course.train.program.train_step(guard=True)`` after every step (the
  engine's step until the divergence check moved to evaluation points; still the replay's): the
  flax MLP, optax momentum through ``optim``, the epoch order kept in the state and redrawn under a
  ``lax.cond``, and the divergence guard: the finiteness of the loss and the new state, and a select
  of the new or old parameters / optimizer state by it;
* ``engine``: the engine as ``run_chunk`` runs it: ``program.train_interval`` over the ``--steps``
  steps (``train_step(guard=False)``: the update always applied, the loss's finiteness
  accumulated; then ONE ``settle_interval``, the per-interval divergence check and freezing);
* ``no_guard``: the same steps without the accumulation and without the settle;
* ``epoch_scan``: ``no_guard`` with the hand-written loop's batching (each epoch's order drawn once
  and reshaped, a scan over epochs of a scan over its batches; no ``cond``, no ``dynamic_slice``);
* ``handwritten``: ``peers_jax.handwritten``'s step (plain jnp MLP and momentum, no flax/optax).

Per variant: seconds (median of interleaved repeats), XLA's cost analysis of ONE step
(FLOPs and bytes accessed) and the number of fusions / conditionals in its optimized HLO (one
step at a fixed step number, so the epoch ``cond`` is folded there: 0 conditionals).
The hand-written step repeats ``peers_jax.handwritten``'s (that function times a whole sharded run
and exposes no step to call).
Writes ``results/benchmarks/step_anatomy.json``; ratios only (the machine may be shared).
``--grid dispatch_bound``: the same on bench_peers' dispatch-bound grid (64 x 40-64-64-10), written
to ``step_anatomy_dispatch_bound.json``.
Run: ``python benchmarks/bench_step_anatomy.py [--steps 500 --repeats 3 --grid compute_bound]``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

GRIDS = {"compute_bound": {"width": 512, "seeds": 4}, "dispatch_bound": {"width": 64, "seeds": 16}}


def build(steps: int, grid: str = "compute_bound"):
    """Every variant's jitted K-step function and its (vmapped) arguments."""
    import jax
    import jax.numpy as jnp
    import optax
    from bench_sweep import config_for

    from dl_course.train import program
    from dl_course.train.build import build_program, load_data
    from dl_course.train.grid import make_grid, stack_hparams
    from dl_course.train.state import stream

    g = GRIDS[grid]
    config = config_for(g["width"], steps, g["seeds"])
    config.learning_rates = [0.003, 0.01, 0.03, 0.1]
    data = load_data(config)
    prog, _ = build_program(config, data, None, None, [])
    dev = {k: jnp.asarray(getattr(data, k)) for k in ("x_train", "y_train", "x_test", "y_test")}
    runs = make_grid(config.seeds, config.learning_rates)
    hp = {k: jnp.asarray(v) for k, v in stack_hparams(runs).items()}
    seeds = jnp.asarray([r["seed"] for r in runs], jnp.uint32)
    state0 = jax.jit(jax.vmap(lambda s, h: program.init_run(prog, s, h, dev)))(seeds, hp)
    n, b = data.n_train, prog.batch_size
    per_epoch = n // b

    def plain_step(state, batch):  # value_and_grad, the optax rule, apply
        dkey = jax.random.fold_in(stream(state.key, "dropout"), state.step)
        (loss, (ms, _)), grads = jax.value_and_grad(
            lambda p: prog.task.loss(p, state.model_state, batch, dkey, True), has_aux=True)(state.params)
        tx = program._tx(prog, state.hparams, state.step)
        updates, opt = tx.update(grads, state.opt_state, state.params)
        return state._replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              opt_state=opt, model_state=ms)

    def k_steps(step_fn):
        def run(state):
            def body(carry, _):
                s, t = carry
                return (step_fn(s, t), t + 1), None
            return jax.lax.scan(body, (state, jnp.int32(0)), None, length=steps)[0][0]
        return run

    def per_step_guard(s, t):
        return program.train_step(prog, s, dev, t)[0]

    def engine(state):  # run_chunk's interval, without its evaluation
        return program.train_interval(prog, state, dev, jnp.int32(0), steps)[0]

    def no_guard(s, t):
        batch, s = program._batch(prog, s, dev, t)
        return plain_step(s, batch)

    def epoch_scan(state):
        def epoch(s, e):
            order = program._epoch_order(prog, s.key, e)[: per_epoch * b].reshape(per_epoch, b)
            return jax.lax.scan(lambda s_, idx: (plain_step(s_, {"x": dev["x_train"][idx],
                                                                 "y": dev["y_train"][idx]}), None), s, order)[0], None
        full, rem = divmod(steps, per_epoch)
        state = jax.lax.scan(epoch, state, jnp.arange(full))[0]
        if rem:
            order = program._epoch_order(prog, state.key, full)[: rem * b].reshape(rem, b)
            state = jax.lax.scan(lambda s_, idx: (plain_step(s_, {"x": dev["x_train"][idx],
                                                                  "y": dev["y_train"][idx]}), None), state, order)[0]
        return state

    fns = {"per_step_guard": k_steps(per_step_guard), "engine": engine, "no_guard": k_steps(no_guard),
           "epoch_scan": epoch_scan}
    one = {"per_step_guard": lambda s: per_step_guard(s, jnp.int32(1)),
           "engine": lambda s: program.train_step(prog, s, dev, jnp.int32(1), guard=False)[0],
           "no_guard": lambda s: no_guard(s, jnp.int32(1)),
           "epoch_scan": lambda s: plain_step(s, {"x": dev["x_train"][:b], "y": dev["y_train"][:b]})}
    out = {k: (jax.jit(jax.vmap(f)), jax.jit(jax.vmap(one[k])), state0) for k, f in fns.items()}

    # the hand-written step (peers_jax.handwritten's, same shapes), its parameters from the engine's
    x, y = dev["x_train"], dev["y_train"]
    layers = [(state0.params[f"Dense_{i}"]["kernel"], state0.params[f"Dense_{i}"]["bias"]) for i in range(3)]
    mom = jax.tree.map(jnp.zeros_like, layers)
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(s), 1))(seeds)

    def loss(params, xb, yb):
        for w, bias in params[:-1]:
            xb = jax.nn.relu(xb @ w + bias)
        logp = jax.nn.log_softmax(xb @ params[-1][0] + params[-1][1])
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    def hw_step(carry, idx, lr):
        p, m = carry
        g = jax.grad(loss)(p, x[idx], y[idx])
        m = jax.tree.map(lambda m_, g_: 0.9 * m_ + g_, m, g)
        return jax.tree.map(lambda p_, m_: p_ - lr * m_, p, m), m

    def hw(args):
        p, m, key, lr = args

        def epoch(carry, e):
            order = jax.random.permutation(jax.random.fold_in(key, e), n)[: per_epoch * b].reshape(per_epoch, b)
            return jax.lax.scan(lambda c, idx: (hw_step(c, idx, lr), None), carry, order)[0], None
        full, rem = divmod(steps, per_epoch)
        carry = jax.lax.scan(epoch, (p, m), jnp.arange(full))[0]
        if rem:
            order = jax.random.permutation(jax.random.fold_in(key, full), n)[: rem * b].reshape(rem, b)
            carry = jax.lax.scan(lambda c, idx: (hw_step(c, idx, lr), None), carry, order)[0]
        return carry

    lrs = hp["learning_rate"]
    out["handwritten"] = (jax.jit(jax.vmap(hw)), jax.jit(jax.vmap(lambda a: hw_step(a[:2], jnp.arange(b), a[3]))),
                          (layers, mom, keys, lrs))
    return out


def hlo_counts(compiled) -> dict:
    text = compiled.as_text()
    return {"fusions": len(re.findall(r"^\s*\S+ = \S+ fusion\(", text, re.M)),
            "conditionals": len(re.findall(r" conditional\(", text))}


def measure(steps: int, repeats: int, grid: str = "compute_bound") -> dict:
    import jax
    from bench_hvp import interleaved_medians

    fns = build(steps, grid)
    out = {}
    for name, (multi, single, args) in fns.items():
        c = single.lower(args).compile()
        cost = c.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        out[name] = {"step_gflop": float(cost.get("flops", 0.0)) / 1e9,
                     "step_mbytes_accessed": float(cost.get("bytes accessed", 0.0)) / 1e6, **hlo_counts(c)}
        jax.block_until_ready(multi(args))  # compile
    medians = interleaved_medians({k: v[0] for k, v in fns.items()}, {k: (v[2],) for k, v in fns.items()},
                                  reps=repeats)
    for name, s in medians.items():
        out[name]["seconds"] = s
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--grid", choices=sorted(GRIDS), default="compute_bound",
                   help="bench_peers' grids: 16 x 40-512-512-10 or 64 x 40-64-64-10 (4 learning rates x seeds)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None, help="default results/benchmarks/step_anatomy[_dispatch_bound].json")
    args = p.parse_args(argv)
    from dl_course import results

    res = measure(args.steps, args.repeats, args.grid)
    suffix = "" if args.grid == "compute_bound" else "_" + args.grid
    out = Path(args.out or HERE.parent / "results" / "benchmarks" / f"step_anatomy{suffix}.json")
    g = GRIDS[args.grid]
    base = res["handwritten"]["seconds"]
    summary = {k: {"over_handwritten_speed": base / v["seconds"], **v} for k, v in res.items()}
    doc = {"benchmark": "bench_step_anatomy", "grid": args.grid, "steps": args.steps, "repeats": args.repeats,
           "runs": 4 * g["seeds"],
           "model": f"MLP 40-{g['width']}-{g['width']}-10, momentum 0.9, batch 128, MNIST-1D 4000 examples, float32",
           "protocol": "each variant one jitted vmapped lax.scan of --steps steps, compile excluded, "
                       "interleaved repeats, medians; cost analysis and HLO counts of ONE vmapped step",
           "variants": summary, "device": results.device_info(), "versions": results.package_versions()}
    from dl_course.rundir import write_json
    write_json(out, doc)
    for k, v in summary.items():
        print(f"{k:12s} {v['seconds']:7.2f} s  speed vs hand-written {v['over_handwritten_speed']:.3f}  "
              f"{v['step_gflop']:.2f} GFLOP/step  {v['step_mbytes_accessed']:.0f} MB/step  "
              f"fusions {v['fusions']} conditionals {v['conditionals']}")


if __name__ == "__main__":
    main()
