"""GD, SGD, SGD with momentum, Adam and SAM on one task: sharpness, margin and test accuracy.

Wilson, Roelofs, Stern, Srebro & Recht (2017, NeurIPS), "The marginal value of adaptive gradient
methods in machine learning": on the same task, different optimizers reach solutions that fit the
training set equally well but generalize differently (adaptive methods worse in their
experiments). Here every optimizer's solutions are also characterized by this codebase's
measures — λmax and the Hessian trace (Keskar et al. 2017; Jastrzębski et al. 2017), and the
spectrally normalized margin (Bartlett et al. 2017) — to see which of them tracks test accuracy
across optimizers (Jiang et al. 2020, "Fantastic generalization measures and where to find them").
SAM (Foret et al. 2021) explicitly seeks flat minima.

Protocol, in two stages, one sweep per optimizer and stage (the update rule and the batch size are
structural); GD is full-batch, the others use the configured minibatch size.

1. Tuning: a validation split (``val_fraction`` of the training set, seed ``val_seed``) is carved
   from the training data; each optimizer trains ``tuning_seeds`` × its learning-rate grid on the
   rest and its rate is the one with the best mean *validation* accuracy
   (:func:`dl_course.measures.statistics.selection.pick_on_validation`), which must be interior to the grid (a
   pick at an edge is flagged: the grid is too narrow). The test set is never looked at here.
2. Comparison: each optimizer at its tuned rate over ``train.seeds`` (the same seeds for every
   optimizer: the same initializations), trained on the same reduced training set; test accuracy,
   λmax, trace and margin per run, and every optimizer's difference to ``baseline`` paired by seed
   with its 95% CI (``dl_course.measures.statistics.intervals``). Every run is stopped at one target training loss
(``config.train.target_train_loss``, the engine's target stop, as in Jiang et al. 2020), so the
solutions are compared at equal training loss — without it the λmax ranking is largely a ranking
of final losses (the cross-entropy Hessian shrinks with the loss). ``config.train.steps`` is the
budget; runs that do not reach the target are counted and left out of every comparison.
All final solutions of an optimizer are measured in one vmapped program
(:func:`dl_course.measures.measure_solutions`).

Config: ``config.train`` is the engine's (its optimizer, options, batch size and learning rates
are replaced by each entry of ``optimizers``); the study's keys are ``optimizers`` and ``measure``.
"""

from __future__ import annotations

import copy

import numpy as np

from dl_course import measures, results
from dl_course.data.splits import train_val_split
from dl_course.measures.statistics import intervals
from dl_course.measures.statistics.selection import pick_on_validation
from dl_course.plotting.scatter import rank_correlations
from dl_course.train import sweep
from dl_course.train.build import load_data


def optimizer_config(config, name: str, learning_rates=None, seeds=None):
    """The engine config of optimizer entry ``name`` of ``config.optimizers``: ``config.train``
    with that entry's update rule, fixed options, batch size (0 = full batch) and learning rates
    (or ``learning_rates``; ``seeds`` replaces ``train.seeds``)."""
    spec = config.optimizers[name]
    cfg = copy.deepcopy(config.train)
    cfg.optimizer = spec.rule
    cfg.optimizer_options = copy.deepcopy(spec.options)
    cfg.batch_size = int(spec.batch_size)
    cfg.learning_rates = list(spec.learning_rates if learning_rates is None else learning_rates)
    if seeds is not None:
        cfg.seeds = list(seeds)
    return cfg


def split(data, val_fraction: float, seed: int):
    """``(train, tune)``: the training set without a validation split, and the same with the
    validation split as its *test* set (what the tuning sweeps evaluate; the real test set is not
    touched there)."""
    tr, va = train_val_split(data.n_train, val_fraction, seed)
    info = {"validation": {"fraction": val_fraction, "seed": seed, "n_val": len(va), "n_train": len(tr)}}
    train = data.replace(x_train=data.x_train[tr], y_train=data.y_train[tr], info=info)
    return train, train.replace(x_test=data.x_train[va], y_test=data.y_train[va])


def tune(config, name: str, tune_data) -> tuple[dict, list[dict]]:
    """Tuning sweep of optimizer ``name`` (``tuning_seeds`` × its grid) on ``tune_data``: the pick
    (:func:`pick_on_validation` on the final validation accuracy) and one row per run."""
    cfg = optimizer_config(config, name, seeds=config.tuning_seeds)
    res = sweep(cfg, data=tune_data, progress=True)
    lrs = list(cfg.learning_rates)
    acc = np.asarray(res.metrics["test_accuracy"][:, -1], dtype=float)  # the validation split here
    acc = np.where(np.asarray(res.diverged), np.nan, acc)
    scores = np.full((len(cfg.seeds), len(lrs)), np.nan)
    rows = []
    for i, g in enumerate(res.grid):
        scores[list(cfg.seeds).index(g["seed"]), lrs.index(g["learning_rate"])] = acc[i]
        rows.append({"stage": "tuning", "optimizer": name, "learning_rate": g["learning_rate"], "seed": g["seed"],
                     "val_accuracy": None if np.isnan(acc[i]) else float(acc[i]),
                     "train_loss": float(res.metrics["train_loss"][i, -1]), "diverged": bool(res.diverged[i]),
                     "converged": bool(res.converged[i]), "steps_to_target": int(res.steps_to_target[i])})
    pick = pick_on_validation(lrs, scores)
    return {"learning_rate": pick["value"], "interior": pick["interior"], "grid": lrs,
            "mean_val_accuracy": pick["mean_scores"]}, rows


def _spearman(a, b):
    return rank_correlations(a, b)["spearman_rho"]


def run(config, run_dir: results.RunDir) -> dict:
    """Train each optimizer's grid, measure every solution, plot the design card, write results."""
    from dl_course.plotting import flatness as plots

    t = config.train
    data, tune_data = split(load_data(t), float(config.val_fraction), int(config.val_seed))
    mc = config.measure
    rows, conv, timing, curves, tuned, tuning_rows = [], None, {}, {}, {}, []
    for name in config.optimizers:
        tuned[name], trows = tune(config, name, tune_data)
        tuning_rows += trows
        print(f"{name}: validation accuracy by learning rate "
              + ", ".join(f"{lr:g}: {a:.3f}" for lr, a in zip(tuned[name]["grid"], tuned[name]["mean_val_accuracy"]))
              + f" -> {tuned[name]['learning_rate']:g}" + ("" if tuned[name]["interior"] else " (EDGE of the grid)"))
        cfg = optimizer_config(config, name, learning_rates=[tuned[name]["learning_rate"]])
        res = sweep(cfg, data=data, progress=True)
        meas = measures.measure_solutions(cfg, data, res, seed=mc.seed, num_examples=mc.examples,
                                          lanczos_iters=mc.lanczos_iters, trace_samples=mc.trace_samples,
                                          margin_quantile=mc.margin_quantile)
        conv = conv or {**res.conventions, **measures.measurement_conventions(
            cfg, data, mc.examples, mc.lanczos_iters, mc.trace_samples, mc.margin_quantile)}
        timing[name] = res.timing["total_s"]
        curves[f"{name}_train_loss"] = res.metrics["train_loss"]
        curves[f"{name}_test_accuracy"] = res.metrics["test_accuracy"]
        for i, g in enumerate(res.grid):
            div = bool(res.diverged[i])
            val = (lambda k: float("nan") if div else float(meas[k][i]))  # noqa: E731
            rows.append({"stage": "comparison", "optimizer": name, "rule": cfg.optimizer,
                         "options": cfg.optimizer_options.to_dict(),
                         "batch_size": data.n_train if cfg.batch_size == 0 else cfg.batch_size,
                         "learning_rate": g["learning_rate"], "seed": g["seed"],
                         "lambda_max": val("lambda_max"), "lambda_max_residual": val("lambda_max_residual"),
                         "hessian_trace": val("hessian_trace"), "hessian_trace_stderr": val("hessian_trace_stderr"),
                         "normalized_margin": val("normalized_margin"), "output_margin": val("output_margin"),
                         "test_accuracy": float(res.metrics["test_accuracy"][i, -1]),
                         "train_accuracy": float(res.metrics["train_accuracy"][i, -1]),
                         "train_loss": float(res.metrics["train_loss"][i, -1]), "diverged": div,
                         "converged": bool(res.converged[i]), "steps_to_target": int(res.steps_to_target[i])})

    col = {k: np.array([r[k] for r in rows]) for k in ("optimizer", "learning_rate", "lambda_max", "hessian_trace",
                                                        "normalized_margin", "test_accuracy", "train_accuracy",
                                                        "diverged", "seed", "train_loss", "converged",
                                                        "steps_to_target")}
    col["optimizer"] = col["optimizer"].astype(str)
    target = float(t.target_train_loss)
    # Compared: runs that did not diverge and, with the target stop on, reached the target.
    ok = ~col["diverged"] & (col["converged"] if target > 0 else True)
    left_out = [{k: r[k] for k in ("optimizer", "learning_rate", "seed", "train_loss")} for r in rows
                if target > 0 and not r["converged"] and not r["diverged"]]
    if left_out:
        print(f"{len(left_out)} of {len(rows)} runs did not reach train loss {target:g} within {t.steps} steps: "
              "left out of the comparisons")
    fig = plots.optimizer_scatter(
        col["optimizer"], col["learning_rate"], col["test_accuracy"],
        {"λmax (top Hessian eigenvalue)": (col["lambda_max"], True), "Hessian trace": (col["hessian_trace"], True),
         f"normalized margin ({mc.margin_quantile:.0%} quantile)": (col["normalized_margin"], False)},
        ~ok, title=f"{t.model} on {t.dataset} (n={data.n_train}), each at its validation-tuned rate, stopped at train "
                   f"loss {float(t.target_train_loss):g} (budget {t.steps} steps): measures vs test accuracy")
    run_dir.figure("optimizer_comparison.png", fig)

    per_opt = {}
    for name in config.optimizers:
        sel = ok & (col["optimizer"] == name)
        if not sel.any():
            per_opt[name] = {"num_runs": 0}
            continue
        per_opt[name] = {"learning_rate": tuned[name]["learning_rate"],
                         "mean_test_accuracy": float(np.mean(col["test_accuracy"][sel])),
                         "test_accuracy": intervals.mean_ci(col["test_accuracy"][sel]) if sel.sum() > 1 else None,
                         "lambda_max": intervals.mean_ci(col["lambda_max"][sel]) if sel.sum() > 1 else None,
                         "median_lambda_max": float(np.nanmedian(col["lambda_max"][sel])),
                         "median_normalized_margin": float(np.nanmedian(col["normalized_margin"][sel])),
                         "min_train_accuracy": float(np.min(col["train_accuracy"][sel])),
                         "median_steps_to_target": float(np.median(col["steps_to_target"][sel])),
                         "median_train_loss": float(np.median(col["train_loss"][sel])),
                         "num_runs": int(sel.sum())}
    base = str(config.baseline)
    differences = {}
    for name in config.optimizers:
        if name == base:
            continue
        by_seed = {}
        for o in (name, base):
            sel = ok & (col["optimizer"] == o)
            by_seed[o] = dict(zip(col["seed"][sel].tolist(), zip(col["test_accuracy"][sel], col["lambda_max"][sel])))
        common = sorted(set(by_seed[name]) & set(by_seed[base]))
        if len(common) < 2:
            differences[name] = None
            continue
        differences[name] = {}
        for j, key in enumerate(("test_accuracy", "lambda_max")):
            d = intervals.paired_difference_ci([by_seed[name][s][j] for s in common],
                                               [by_seed[base][s][j] for s in common])
            differences[name][key] = {**d, "verdict": intervals.verdict(d)}
    within = {name: _spearman(col["test_accuracy"][ok & (col["optimizer"] == name)],
                              col["lambda_max"][ok & (col["optimizer"] == name)]) for name in config.optimizers}
    headline = {
        "n_train": data.n_train, "n_val": int(tune_data.n_test), "steps": int(t.steps), "optimizers": per_opt,
        "tuned": tuned, "all_picks_interior": all(v["interior"] for v in tuned.values()),
        "baseline": base, f"minus_{base}": differences,
        "spearman_within_optimizer_test_accuracy_vs_lambda_max": within,
        "spearman_test_accuracy_vs_lambda_max": _spearman(col["test_accuracy"][ok], col["lambda_max"][ok]),
        "spearman_test_accuracy_vs_trace": _spearman(col["test_accuracy"][ok], col["hessian_trace"][ok]),
        "spearman_test_accuracy_vs_normalized_margin": _spearman(col["test_accuracy"][ok],
                                                                 col["normalized_margin"][ok]),
        "spearman_lambda_max_vs_train_loss": _spearman(col["train_loss"][ok], col["lambda_max"][ok]),
        "spearman_test_accuracy_vs_train_loss": _spearman(col["test_accuracy"][ok], col["train_loss"][ok]),
        "target_train_loss": target, "num_compared": int(ok.sum()), "num_not_converged": len(left_out),
        "not_converged": left_out,
        "num_runs": len(rows), "num_diverged": int(col["diverged"].sum()), "sweep_seconds": timing,
    }
    conv = {**conv, "batching": "per optimizer (summary rows: batch_size; B = n is full batch), minibatches from "
                                "per-epoch permutations keyed by (seed, epoch), last partial batch dropped",
            "optimizers": {k: config.optimizers[k].to_dict() for k in config.optimizers},
            "spearman": "rank correlations over the compared runs of all optimizers (pooled) or of one optimizer "
                        "(within)",
            "validation": {**data.info["validation"], "use": "learning rates picked on the mean final validation "
                           "accuracy over tuning_seeds; the test set is used only in the comparison stage"},
            "error_bars": "95% Student-t intervals over seeds (dl_course.measures.statistics.intervals); "
                          "differences to the baseline paired by seed (same initialization)",
            "rows": "stage 'tuning' (validation accuracy, val_accuracy) and stage 'comparison' (test set)",
            "diverged_runs": "measures recorded as null; left out of figures and correlations",
            "target_stop_comparisons": ("with target_train_loss > 0 only runs that reached it are compared "
                                        "(figures, correlations, per-optimizer medians); the others are listed "
                                        "in headline.not_converged")}
    results.write_results(run_dir, config, "optimizer_comparison", conv, tuning_rows + rows, headline,
                          {**{k: v for k, v in col.items()}, **curves})
    return headline
