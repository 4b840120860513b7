"""Benchmark: where the time of ``generalization_measures:full`` (Jiang et al.'s 3^7 grid) goes, and
what compaction and the sort-free epoch order change.

(a) Measured in this run, on one architecture of the full grid (a 40-64-64-10 MLP: 3 batch sizes x
81 runs of learning rate x momentum x weight decay x dropout rate, one seed, exact stop at train CE
0.01): training ``before`` (every run stays in its vmapped program until the last one stops;
``jax.random.permutation`` epoch orders) against ``after`` (``compact_runs``: stopped runs leave
the program; ``index_shuffle``), in alternating rounds, each program compiled by a warm-up call;
then the measure suite on those 243 models (one device).
(b) From the committed reference run ``results/generalization_measures/full/`` (if present): its
profile (compilation + first chunks, training, the exact stop, measures, test errors, statistics,
computed vs useful run-steps), the run-steps the same grid would have computed without compaction
(each program runs until its last run stops: ``runs x max stop step``, from the rows), and the
2,187 models' settings. Writes ``results/benchmarks/generalization_full.json`` (atomically).
Run: ``python benchmarks/bench_generalization_full.py [--quick | --reference-only]``
(``--reference-only``: refresh (b) in the existing JSON, keeping the measured part).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AXES = ("learning_rate", "momentum", "weight_decay", "width", "depth", "batch_size", "dropout_rate")


def reference_profile(path: Path) -> dict | None:
    """The committed full run's profile, counterfactual run-steps without compaction, and models."""
    if not (path / "summary.json").exists():
        return None
    s = json.loads((path / "summary.json").read_text())
    rows, h = s["runs"], s["headline"]
    steps_cap = int(json.loads((path / "config.json").read_text())["config"]["train"]["steps"])
    programs: dict[tuple, list[dict]] = {}
    for r in rows:
        programs.setdefault((r["width"], r["depth"], r["batch_size"]), []).append(r)
    without = 0
    for runs in programs.values():  # a run stops at its target; one that never does runs to the cap
        last = max(r["steps_to_target"] if r["steps_to_target"] >= 0 else steps_cap for r in runs)
        without += len(runs) * last
    prof = h["profile"]
    return {"models": len(rows), "axes": list(AXES), "settings": [[r[a] for a in AXES] for r in rows],
            "profile": {k: v for k, v in prof.items() if k != "architectures"},
            "run_steps_without_compaction": int(without),
            "compaction_run_step_ratio": without / prof["run_steps"] if prof["run_steps"] else None,
            "architectures": prof["architectures"], "device": s.get("device"), "versions": s.get("versions")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1500 steps, width 32, no file written (a smoke run)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--reference-only", action="store_true", help="refresh the reference run's part only")
    args = parser.parse_args()
    out = ROOT / "results" / "benchmarks" / "generalization_full.json"
    if args.reference_only:
        report = json.loads(out.read_text()) if out.exists() else {
            "measured": None, "note": "the measured before/after part (a) was not run; run the script without "
                                      "--reference-only for it"}
        report["reference_run"] = reference_profile(ROOT / "results" / "generalization_measures" / "full")
        _write(out, report)
        return
    from dl_course.devices import use_all_cpu_cores

    use_all_cpu_cores()
    import jax
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from dl_course.measures import generalization as gm
    from dl_course.results import package_versions
    from dl_course.studies import generalization_measures as study
    from dl_course.train import sweep
    from dl_course.train.build import load_data, make_task
    from dl_course.train.placement import to_host
    from dl_course.train.state import stream
    from experiments.generalization_measures import get_config

    config = get_config("full")
    width, steps = (32, 1500) if args.quick else (64, int(config.train.steps))
    data = load_data(config.train)
    n_curve = int(config.curve_test_examples)
    curve = data.replace(x_test=data.x_test[:n_curve], y_test=data.y_test[:n_curve])
    grid = {"momentum": list(config.momenta), "weight_decay": list(config.weight_decays),
            "dropout_rate": list(config.dropout_rates)}

    def engine(kind: str, batch_size: int):
        c = copy.deepcopy(config.train)
        c.model_options.width, c.model_options.depth, c.batch_size, c.steps = width, 2, batch_size, steps
        c.compact_runs, c.shuffle = (True, "index_shuffle") if kind == "after" else (False, "permutation")
        return c

    kinds = ("before", "after")
    for kind in kinds:  # warm-up: compiles every program (and the compaction sizes this grid reaches)
        for bs in config.batch_sizes:
            sweep(engine(kind, bs), data=curve, **grid)
    train_s = {k: [] for k in kinds}
    results = {}
    for _ in range(args.rounds):
        for kind in kinds:
            t0, res = time.perf_counter(), []
            for bs in config.batch_sizes:
                res.append(sweep(engine(kind, bs), data=curve, **grid))
            train_s[kind].append(time.perf_counter() - t0)
            results[kind] = res
    run_steps = {k: int(sum(r.timing["run_steps"] for r in v)) for k, v in results.items()}
    useful = {k: int(sum(r.timing["active_run_steps"] for r in v)) for k, v in results.items()}

    # measures: the 243 models of the "after" runs, on one device (the suite's host callbacks must
    # not fill every XLA:CPU thread: split over the devices it hung)
    task = make_task(engine("after", 64), data)
    params, model_state = study._concat_results(results["after"])
    seeds = np.concatenate([[g["seed"] for g in r.grid] for r in results["after"]]).astype(np.uint32)
    m = int(config.measure_examples)
    x, y = jax.numpy.asarray(data.x_train[:m]), jax.numpy.asarray(data.y_train[:m])
    init = to_host(jax.vmap(lambda s: task.init(stream(jax.random.PRNGKey(s), "init"), x[:1])[0])(seeds))
    keys = to_host(jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(0), i))(np.arange(len(seeds))))
    fn = gm.vmapped_generalization_measures(task.apply, list(gm.GENERALIZATION_MEASURES),
                                            gm.MeasureConfig(**config.measure.to_dict()))
    jax.block_until_ready(fn(params, init, model_state, keys, x, y))  # compile
    t0 = time.perf_counter()
    jax.block_until_ready(fn(params, init, model_state, keys, x, y))
    measure_s = {"one_device": time.perf_counter() - t0}

    med = {k: statistics.median(v) for k, v in train_s.items()}
    report = {
        "setting": "generalization_measures:full at one architecture: MNIST-1D 500 examples, "
                   f"MLP 40-{width}-{width}-10, "
                   f"batch sizes {list(config.batch_sizes)} (one program each) x {len(results['after'][0].grid)} runs "
                   "(3 lr x 3 momentum x 3 weight decay x 3 dropout rates, vmapped), one seed, exact stop at train "
                   f"CE {config.train.target_train_loss}, at most {steps} steps",
        "measured": {"train_seconds_median": med, "train_seconds_all": train_s, "rounds": args.rounds,
                     "ratio_before_over_after": med["before"] / med["after"],
                     "run_steps": run_steps, "useful_run_steps": useful,
                     "measures_seconds": measure_s, "measured_models": len(seeds)},
        "before": "compact_runs off (stopped runs computed until the program's last run stops), shuffle permutation",
        "after": "compact_runs on (power-of-two program sizes), shuffle index_shuffle",
        "reference_run": reference_profile(ROOT / "results" / "generalization_measures" / "full"),
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}", "versions": package_versions(),
    }
    print(json.dumps(report["measured"], indent=1))
    if not args.quick:
        _write(out, report)


def _write(out: Path, report: dict) -> None:
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(out)


if __name__ == "__main__":
    main()
