"""Small- vs large-batch SGD: sharpness, flatness, test accuracy and the loss landscape.

Keskar, Mudigere, Nocedal, Smelyanskiy & Tang (2017, ICLR), "On large-batch training for deep
learning: generalization gap and sharp minima": large-batch training converges to sharper minima
(larger top Hessian eigenvalues) that generalize worse. Jastrzębski et al. (2017), "Three factors
influencing minima in SGD": the ratio of learning rate to batch size, η/B (the scale of SGD's
gradient noise), determines how flat the reached minimum is. Li, Xu, Taylor, Studer & Goldstein
(2018, NeurIPS), "Visualizing the loss landscape of neural nets": 1D slices along
filter-normalized random directions make the sharpness of different solutions comparable.

Protocol: one sweep per batch size (the batch size is structural: it changes the program), each
sweeping seeds × learning rates in one vmapped program. Every run is stopped at one target
training loss (``config.train.target_train_loss``, the engine's target stop; Jiang et al. 2020,
"Fantastic generalization measures", stop every model at cross-entropy 0.01), so solutions are
compared at equal training loss: the cross-entropy Hessian shrinks as the loss falls, and without
the stop λmax would partly rank the final losses. ``max(epochs · n / B, min_steps)`` steps are the
budget; a run that does not reach the target within it is counted (``num_not_converged``) and
left out of every comparison, never mixed with the converged runs. With the target off (0) every
run trains for the whole budget.
Runs that share a seed share their initialization. At the end, λmax, the Hessian trace and the
normalized margin of every run are measured in one vmapped program
(:func:`dl_course.measures.measure_solutions`); the small- and large-batch solutions of one
(seed, learning rate) are compared by filter-normalized 1D slices and by linear interpolation
(:func:`dl_course.measures.compare_solutions`).

Config: ``config.train`` is the engine's (its ``batch_size`` and ``steps`` are replaced per batch
size); the study's keys are ``batch_sizes``, ``epochs``, ``min_steps``, ``measure`` and
``landscape``.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from dl_course import measures, results
from dl_course.errors import ConfigError
from dl_course.measures.generalization.ranking_ci import spearman_with_ci
from dl_course.plotting.scatter import rank_correlations
from dl_course.train import sweep
from dl_course.train.build import load_data, make_model
from dl_course.train.task import supervised_task


def steps_for(batch_size: int, n_train: int, epochs: int, min_steps: int, eval_every: int) -> int:
    """``max(epochs · ⌊n/B⌋, min_steps)`` rounded up to a multiple of ``eval_every`` (B = 0: full
    batch, one step per epoch)."""
    per_epoch = 1 if batch_size in (0, n_train) else n_train // batch_size
    steps = max(int(epochs) * per_epoch, int(min_steps))
    return -(-steps // int(eval_every)) * int(eval_every)


def paired_batch_effect(rows: list[dict], small: int, large: int, key: str, log: bool,
                        confidence: float = 0.95) -> dict:
    """Mean over (seed, learning rate) of ``key``(small batch) − ``key``(large batch) (of logs if
    ``log``: the log-ratio), both runs compared (converged, not diverged), with a BCa bootstrap CI
    over the pairs; ``fraction_positive``: pairs where the small batch's value is larger."""
    by = {(r["batch_size"], r["seed"], r["learning_rate"]): r for r in rows if r["compared"]}
    diffs = []
    for (b, sd, lr), r in by.items():
        other = by.get((large, sd, lr))
        if b == small and other is not None:
            a, c = r[key], other[key]
            diffs.append(np.log(a) - np.log(c) if log else a - c)
    diffs = np.asarray(diffs, float)
    if diffs.size < 3:
        return {"estimate": float("nan"), "ci": [float("nan")] * 2, "pairs": int(diffs.size)}
    ci = stats.bootstrap((diffs,), np.mean, n_resamples=2000, confidence_level=confidence, method="BCa",
                         random_state=0).confidence_interval
    return {"estimate": float(diffs.mean()), "ci": [float(ci.low), float(ci.high)], "pairs": int(diffs.size),
            "fraction_positive": float(np.mean(diffs > 0))}


def _pick(rows, batch_size, seed, lr):
    for i, r in enumerate(rows):
        if r["batch_size"] == batch_size and r["seed"] == seed and np.isclose(r["learning_rate"], lr):
            return i
    raise ValueError(f"no run with batch size {batch_size}, seed {seed}, learning rate {lr} in the grid")


def run(config, run_dir: results.RunDir) -> dict:
    """Train every batch size's seeds × learning-rates sweep, measure, plot, write results."""
    from dl_course.plotting import flatness as plots

    t = config.train
    data = load_data(t)
    n = data.n_train
    mc = config.measure
    rows, params_list, curves = [], [], []
    conventions = None
    timing = {}
    for b in config.batch_sizes:
        cfg = copy.deepcopy(t)
        cfg.batch_size = int(b)
        cfg.steps = steps_for(int(b), n, config.epochs, config.min_steps, t.eval_every)
        res = sweep(cfg, data=data, progress=True)
        meas = measures.measure_solutions(cfg, data, res, seed=mc.seed, num_examples=mc.examples,
                                          lanczos_iters=mc.lanczos_iters, trace_samples=mc.trace_samples)
        conventions = conventions or {**res.conventions, **measures.measurement_conventions(
            cfg, data, mc.examples, mc.lanczos_iters, mc.trace_samples, 0.1)}
        eff_b = n if int(b) == 0 else int(b)
        timing[f"B={eff_b}"] = res.timing["total_s"]
        for i, g in enumerate(res.grid):
            div = bool(res.diverged[i])
            stop = int(res.steps_to_target[i])
            nan_if_div = (lambda v: float("nan") if div else float(v))  # noqa: E731
            rows.append({"batch_size": eff_b, "full_batch": eff_b == n, "learning_rate": g["learning_rate"],
                         "seed": g["seed"], "steps": stop if stop >= 0 else cfg.steps,
                         "epochs": (stop if stop >= 0 else cfg.steps) * eff_b / n, "step_budget": cfg.steps,
                         "converged": bool(res.converged[i]), "steps_to_target": stop,
                         "lambda_max": nan_if_div(meas["lambda_max"][i]),
                         "lambda_max_residual": nan_if_div(meas["lambda_max_residual"][i]),
                         "hessian_trace": nan_if_div(meas["hessian_trace"][i]),
                         "hessian_trace_stderr": nan_if_div(meas["hessian_trace_stderr"][i]),
                         "normalized_margin": nan_if_div(meas["normalized_margin"][i]),
                         "test_accuracy": float(res.metrics["test_accuracy"][i, -1]),
                         "train_accuracy": float(res.metrics["train_accuracy"][i, -1]),
                         "train_loss": float(res.metrics["train_loss"][i, -1]),
                         "test_loss": float(res.metrics["test_loss"][i, -1]), "diverged": div})
        if jax.tree.leaves(res.state.model_state):
            raise ConfigError("the landscape comparison needs a model without batch norm (no model state)")
        params_list.append(res.params)
        curves.append((eff_b, res.steps, res.metrics["train_loss"]))

    col = {k: np.array([r[k] for r in rows]) for k in ("batch_size", "learning_rate", "seed", "lambda_max",
                                                        "hessian_trace", "test_accuracy", "diverged", "train_accuracy",
                                                        "train_loss", "normalized_margin", "converged",
                                                        "steps_to_target")}
    target = float(t.target_train_loss)
    # Compared: runs that did not diverge and, with the target stop on, reached the target.
    ok = ~col["diverged"] & (col["converged"] if target > 0 else True)
    fig = plots.batch_size_panels(col["batch_size"], col["learning_rate"], col["lambda_max"], col["hessian_trace"],
                                  col["test_accuracy"], col["train_loss"], ~ok,
                                  title=f"{t.model} on {t.dataset} (n={n}): sharpness and flatness vs batch size")
    run_dir.figure("sharpness_vs_batch_size.png", fig)

    # Landscape: smallest vs largest batch at one (seed, learning rate), same initialization.
    lc = config.landscape
    sizes = [n if int(b) == 0 else int(b) for b in config.batch_sizes]
    b_small, b_large = min(sizes), max(sizes)
    i_s, i_l = _pick(rows, b_small, lc.seed, lc.learning_rate), _pick(rows, b_large, lc.seed, lc.learning_rate)
    all_params = jax.tree.map(lambda *xs: np.concatenate(xs), *params_list)
    pair = jax.tree.map(lambda x: x[np.array([i_s, i_l])], all_params)
    task = supervised_task(make_model(t, data), t.loss, data.num_classes)
    land = measures.compare_solutions(measures.dataset_metrics_fn(task, data), pair, key=jax.random.PRNGKey(lc.seed),
                                      slice_alphas=jnp.linspace(-lc.radius, lc.radius, lc.points),
                                      interp_alphas=jnp.linspace(lc.interp_min, lc.interp_max, lc.points))
    run_dir.figure("landscape.png", plots.landscape_panels(
        land["slice_alphas"], land["slices"], land["interp_alphas"], land["interp"],
        labels=(f"B={b_small}", f"B={b_large}"),
        title=f"small- vs large-batch solution (seed {lc.seed}, η={lc.learning_rate:g})"))

    if target > 0 and not col["converged"][~col["diverged"]].all():
        print(f"{int((~col['converged'] & ~col['diverged']).sum())} of {len(rows)} runs did not reach train loss "
              f"{target:g} within their step budget (epochs / min_steps): left out of the comparisons")
    noise = col["learning_rate"] / col["batch_size"]
    for r, compared in zip(rows, ok):
        r["compared"] = bool(compared)

    def rho(a, b):
        return rank_correlations(a[ok], b[ok])["spearman_rho"]

    def mean_at(b, key):
        sel = ok & (col["batch_size"] == b) & np.isclose(col["learning_rate"], lc.learning_rate)
        return float(np.nanmean(col[key][sel])) if sel.any() else float("nan")

    headline = {
        "n_train": n, "small_batch": b_small, "large_batch": b_large, "reference_learning_rate": lc.learning_rate,
        "lambda_max_small_batch": mean_at(b_small, "lambda_max"),
        "lambda_max_large_batch": mean_at(b_large, "lambda_max"),
        "hessian_trace_small_batch": mean_at(b_small, "hessian_trace"),
        "hessian_trace_large_batch": mean_at(b_large, "hessian_trace"),
        "test_accuracy_small_batch": mean_at(b_small, "test_accuracy"),
        "test_accuracy_large_batch": mean_at(b_large, "test_accuracy"),
        "train_accuracy_small_batch": mean_at(b_small, "train_accuracy"),
        "train_accuracy_large_batch": mean_at(b_large, "train_accuracy"),
        "at_reference_learning_rate": {f"B={b}": {k: mean_at(b, k)
                                                  for k in ("train_loss", "lambda_max", "hessian_trace",
                                                            "test_accuracy", "steps_to_target")}
                                       for b in sizes},
        "spearman_lambda_max_vs_lr_over_b": rho(noise, col["lambda_max"]),
        "spearman_trace_vs_lr_over_b": rho(noise, col["hessian_trace"]),
        "spearman_test_accuracy_vs_lambda_max": rho(col["lambda_max"], col["test_accuracy"]),
        "spearman_test_accuracy_vs_lr_over_b": rho(noise, col["test_accuracy"]),
        "spearman_lambda_max_vs_train_loss": rho(col["train_loss"], col["lambda_max"]),
        "spearman_test_accuracy_vs_train_loss": rho(col["train_loss"], col["test_accuracy"]),
        "spearman_ci": {name: spearman_with_ci(a[ok], b[ok]) for name, (a, b) in {
            "lambda_max_vs_lr_over_b": (noise, col["lambda_max"]),
            "test_accuracy_vs_lambda_max": (col["lambda_max"], col["test_accuracy"]),
            "test_accuracy_vs_lr_over_b": (noise, col["test_accuracy"]),
            "lambda_max_vs_train_loss": (col["train_loss"], col["lambda_max"])}.items()},
        "small_vs_large_batch": {  # paired by (seed, learning rate), every learning rate
            "log_lambda_max_ratio": paired_batch_effect(rows, b_small, b_large, "lambda_max", log=True),
            "log_hessian_trace_ratio": paired_batch_effect(rows, b_small, b_large, "hessian_trace", log=True),
            "test_accuracy_difference": paired_batch_effect(rows, b_small, b_large, "test_accuracy", log=False)},
        "target_train_loss": target, "num_compared": int(ok.sum()),
        "num_not_converged": int((~col["converged"] & ~col["diverged"]).sum()) if target > 0 else 0,
        "not_converged": [{k: r[k] for k in ("batch_size", "learning_rate", "seed", "train_loss")} for r in rows
                          if target > 0 and not r["converged"] and not r["diverged"]],
        "train_loss_range": ([float(np.min(col["train_loss"][ok])), float(np.max(col["train_loss"][ok]))]
                             if ok.any() else [float("nan")] * 2),
        "interpolation_max_train_loss": float(np.max(land["interp"]["train_loss"][
            (land["interp_alphas"] >= 0) & (land["interp_alphas"] <= 1)])),
        "num_runs": len(rows), "num_diverged": int(col["diverged"].sum()), "sweep_seconds": timing,
    }
    conventions = {**conventions, "batching": ("minibatches from per-epoch permutations keyed by (seed, epoch), last "
                                                "partial batch dropped; B = n is full-batch gradient descent"),
                   "batch_sizes": sizes,
                   "steps_per_batch_size": {f"B={s}": steps_for(int(b), n, config.epochs, config.min_steps,
                                                                t.eval_every)
                                            for s, b in zip(sizes, config.batch_sizes)},
                   "landscape": ("1D slices along one Gaussian direction per solution, filter-normalized (Li et al. "
                                 "2018; biases not perturbed), losses on the full train and test sets in eval mode"),
                   "diverged_runs": "measures recorded as null; left out of figures and headline",
                   "target_stop_comparisons": ("with target_train_loss > 0 only runs that reached it are compared "
                                               "(figures, correlations, means); the others are listed in "
                                               "headline.not_converged. Rows: steps = steps_to_target if reached, "
                                               "else the budget step_budget")}
    max_len = max(len(c[1]) for c in curves)
    pad = lambda v: np.pad(v, ((0, 0), (0, max_len - v.shape[1])), constant_values=np.nan)  # noqa: E731
    results.write_results(run_dir, config, "batch_size_sharpness", conventions, rows, headline, {
        **{k: col[k] for k in col}, "hessian_trace_stderr": np.array([r["hessian_trace_stderr"] for r in rows]),
        "train_loss_curves": np.concatenate([pad(c[2]) for c in curves]),
        "curve_steps": np.concatenate([pad(np.broadcast_to(c[1], c[2].shape).astype(float)) for c in curves]),
        "slice_alphas": land["slice_alphas"], "interp_alphas": land["interp_alphas"],
        **{f"slice_{k}": v for k, v in land["slices"].items()},
        **{f"interp_{k}": v for k, v in land["interp"].items()}})
    return headline
