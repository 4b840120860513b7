"""GD, SGD, SGD with momentum, Adam and SAM on one task: sharpness, margin and test accuracy.

Wilson, Roelofs, Stern, Srebro & Recht (2017, NeurIPS), "The marginal value of adaptive gradient
methods in machine learning": on the same task, different optimizers reach solutions that fit the
training set equally well but generalize differently (adaptive methods worse in their
experiments). Here every optimizer's solutions are also characterized by this codebase's
measures — λmax and the Hessian trace (Keskar et al. 2017; Jastrzębski et al. 2017), and the
spectrally normalized margin (Bartlett et al. 2017) — to see which of them tracks test accuracy
across optimizers (Jiang et al. 2020, "Fantastic generalization measures and where to find them").
SAM (Foret et al. 2021) explicitly seeks flat minima.

Protocol: one sweep per optimizer (the update rule and the batch size are structural), each over
seeds × that optimizer's learning rates, the same model and data; GD is full-batch, the others
use the configured minibatch size. Every run is stopped at one target training loss
(``config.train.target_train_loss``, the engine's target stop, as in Jiang et al. 2020), so the
solutions are compared at equal training loss — without it the λmax ranking is largely a ranking
of final losses (the cross-entropy Hessian shrinks with the loss). ``config.train.steps`` is the
budget; runs that do not reach the target are counted and left out of every comparison. All final solutions of an optimizer are
measured in one vmapped program (:func:`dl_course.measures.measure_solutions`).

Config: ``config.train`` is the engine's (its optimizer, options, batch size and learning rates
are replaced by each entry of ``optimizers``); the study's keys are ``optimizers`` and ``measure``.
"""

from __future__ import annotations

import copy

import numpy as np

from dl_course import measures, results
from dl_course.plotting.scatter import rank_correlations
from dl_course.train import sweep
from dl_course.train.build import load_data


def optimizer_config(config, name: str):
    """The engine config of optimizer entry ``name`` of ``config.optimizers``: ``config.train``
    with that entry's update rule, fixed options, batch size (0 = full batch) and learning rates."""
    spec = config.optimizers[name]
    cfg = copy.deepcopy(config.train)
    cfg.optimizer = spec.rule
    cfg.optimizer_options = copy.deepcopy(spec.options)
    cfg.batch_size = int(spec.batch_size)
    cfg.learning_rates = list(spec.learning_rates)
    return cfg


def _spearman(a, b):
    return rank_correlations(a, b)["spearman_rho"]


def run(config, run_dir: results.RunDir) -> dict:
    """Train each optimizer's grid, measure every solution, plot the design card, write results."""
    from dl_course.plotting import flatness as plots

    t = config.train
    data = load_data(t)
    mc = config.measure
    rows, conv, timing, curves = [], None, {}, {}
    for name in config.optimizers:
        cfg = optimizer_config(config, name)
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
            rows.append({"optimizer": name, "rule": cfg.optimizer, "options": cfg.optimizer_options.to_dict(),
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
        ~ok, title=f"{t.model} on {t.dataset} (n={data.n_train}), {t.steps} steps: "
                               "measures vs test accuracy, by optimizer")
    run_dir.figure("optimizer_comparison.png", fig)

    per_opt = {}
    for name in config.optimizers:
        sel = ok & (col["optimizer"] == name)
        if not sel.any():
            per_opt[name] = {"num_runs": 0}
            continue
        best = np.flatnonzero(sel)[int(np.argmax(col["test_accuracy"][sel]))]
        per_opt[name] = {"best_test_accuracy": float(col["test_accuracy"][best]),
                         "best_learning_rate": float(col["learning_rate"][best]),
                         "mean_test_accuracy": float(np.mean(col["test_accuracy"][sel])),
                         "median_lambda_max": float(np.nanmedian(col["lambda_max"][sel])),
                         "median_normalized_margin": float(np.nanmedian(col["normalized_margin"][sel])),
                         "min_train_accuracy": float(np.min(col["train_accuracy"][sel])),
                         "median_steps_to_target": float(np.median(col["steps_to_target"][sel])),
                         "median_train_loss": float(np.median(col["train_loss"][sel])),
                         "num_runs": int(sel.sum())}
    headline = {
        "n_train": data.n_train, "steps": int(t.steps), "optimizers": per_opt,
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
            "spearman": "rank correlations over the compared runs of all optimizers",
            "diverged_runs": "measures recorded as null; left out of figures and correlations",
            "target_stop_comparisons": ("with target_train_loss > 0 only runs that reached it are compared "
                                        "(figures, correlations, per-optimizer medians); the others are listed "
                                        "in headline.not_converged")}
    results.write_results(run_dir, config, "optimizer_comparison", conv, rows, headline,
                          {**{k: v for k, v in col.items()}, **curves})
    return headline
