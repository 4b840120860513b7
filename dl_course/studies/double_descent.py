"""Double descent in the number of random features and in the width of an MLP.

Belkin, Hsu, Ma & Mandal (2019, PNAS), Fig. 2: the test risk of minimum-norm least squares on
``p`` random features peaks at the interpolation threshold ``p ≈ n`` and descends again as
``p → ∞`` ("double descent"), as does the norm of the solution. Nakkiran, Kaplun, Bansal, Yang,
Barak & Sutskever (2019), "Deep double descent", Fig. 1 and §5: the test error of networks trained
to (near) interpolation peaks at the width where they can just fit the training set, a peak made
much more pronounced by label noise.

(i) Random ReLU features (:mod:`dl_course.models.random_features`), one-hot targets, the number
of features swept from ``≪ n`` to ``≫ n``; every count and every feature draw (seed) in one
vmapped float64 program. (ii) A one-hidden-layer MLP trained by full-batch Adam to (near) zero
training error; widths change shapes, so each width is its own sweep, vmapped over seeds × label
noise (the engine's in-graph ``random_label_fraction``: a fraction ``q`` of the training labels
redrawn uniformly, so ``≈ 0.9 q`` of them become wrong; the measured fraction is recorded).

Config: ``config.train`` is the engine's (its ``model_options.width`` is replaced by each entry of
``widths``); the study's keys are ``rf``, ``widths``, ``label_noise`` and
``interpolation_tolerance``.
"""

from __future__ import annotations

import copy

import jax
import numpy as np

from dl_course import results
from dl_course.measures import corrupted_fraction
from dl_course.measures.statistics import intervals
from dl_course.models.random_features import feature_count_curve
from dl_course.train import sweep
from dl_course.train.build import load_data


def peak(values, xs) -> dict:
    """The largest seed-mean of ``values [seeds, points]`` (NaN-free) over the sorted ``xs`` and
    whether it is a peak the seeds support: ``significant`` only when the paired-by-seed differences
    to BOTH neighbours have 95% CIs above 0 (an edge point is never a peak). ``mean_ci``: every
    point's mean with its 95% t interval (``dl_course.measures.statistics.intervals``)."""
    v = np.asarray(values, dtype=float)
    mean = v.mean(0)
    i = int(np.argmax(mean))
    if v.shape[0] < 2:
        return {"at": xs[i], "value": float(mean[i]), "value_ci": None, "significant": False,
                "statement": "one seed: no confidence interval, no peak claimed"}
    out = {"at": xs[i], "value": float(mean[i]), "value_ci": intervals.mean_ci(v[:, i])["ci"],
           "mean_ci": [intervals.mean_ci(v[:, j])["ci"] for j in range(v.shape[1])]}
    sides = {}
    for name, j in (("minus_left", i - 1), ("minus_right", i + 1)):
        if 0 <= j < v.shape[1]:
            d = intervals.paired_difference_ci(v[:, i], v[:, j])
            sides[name] = {**d, "neighbour": xs[j], "verdict": intervals.verdict(d)}
    out.update(sides)
    out["significant"] = len(sides) == 2 and all(d["ci"][0] > 0 for d in sides.values())
    out["statement"] = (f"a peak at {xs[i]}: above both neighbours beyond their paired 95% CIs"
                        if out["significant"] else
                        f"no peak the seeds support: the largest mean (at {xs[i]}) is not above both neighbours "
                        "beyond their paired 95% CIs")
    return out


def feature_counts(n_train: int, ratios) -> list[int]:
    """``round(r · n)`` for each ratio, deduplicated and sorted (at least 1)."""
    return sorted({max(1, int(round(r * n_train))) for r in ratios})


def width_sweep(config, data, widths, noise_levels) -> tuple[list[dict], dict, dict]:
    """One sweep per width of the engine config ``config`` (seeds × label-noise levels vmapped).
    Returns per-run rows, arrays ``[noise, seed, width]`` of train/test error, and the engine's
    conventions."""
    rows, conv = [], None
    seeds = list(config.seeds)
    shape = (len(noise_levels), len(seeds), len(widths))
    errs = {"train_error": np.full(shape, np.nan), "test_error": np.full(shape, np.nan)}
    for j, w in enumerate(widths):
        cfg = copy.deepcopy(config)
        cfg.model_options.width = int(w)
        res = sweep(cfg, data=data, progress=True, random_label_fraction=list(noise_levels))
        conv = conv or res.conventions
        wrong = corrupted_fraction(res.train_labels(data), data.y_train)
        for i, g in enumerate(res.grid):
            tr_err = 1.0 - float(res.metrics["train_accuracy"][i, -1])
            te_err = 1.0 - float(res.metrics["test_accuracy"][i, -1])
            a, s = list(noise_levels).index(g["random_label_fraction"]), seeds.index(g["seed"])
            errs["train_error"][a, s, j], errs["test_error"][a, s, j] = tr_err, te_err
            rows.append({"kind": "mlp", "width": int(w), "num_parameters": int(sum(
                np.prod(v.shape[1:]) for v in jax.tree.leaves(res.params))),
                "random_label_fraction": g["random_label_fraction"], "label_noise": float(wrong[i]),
                "seed": g["seed"], "learning_rate": g["learning_rate"], "train_error": tr_err, "test_error": te_err,
                "final_train_loss": float(res.metrics["train_loss"][i, -1]),
                "final_test_loss": float(res.metrics["test_loss"][i, -1]), "diverged": bool(res.diverged[i])})
    return rows, errs, conv


def run(config, run_dir: results.RunDir) -> dict:
    """Random-features curve, MLP width sweep, figure, summaries."""
    from dl_course.plotting import capacity as plots

    t = config.train
    data = load_data(t)
    n = data.n_train
    counts = feature_counts(n, config.rf.feature_ratios)
    curve = feature_count_curve(data.x_train, data.y_train, data.x_test, data.y_test, data.num_classes, counts,
                                list(config.rf.seeds), block=int(config.rf.block))
    rows = []
    for s_i, s in enumerate(config.rf.seeds):
        for c_i, p in enumerate(counts):
            rows.append({"kind": "random_features", "num_features": p, "seed": int(s), "learning_rate": None,
                         "train_error": float(curve["train_error"][s_i, c_i]),
                         "test_error": float(curve["test_error"][s_i, c_i]),
                         "train_mse": float(curve["train_mse"][s_i, c_i]),
                         "test_mse": float(curve["test_mse"][s_i, c_i]),
                         "coef_norm": float(curve["coef_norm"][s_i, c_i]), "rank": int(curve["rank"][s_i, c_i]),
                         "diverged": False})
    widths = [int(w) for w in config.widths]
    noise = [float(q) for q in config.label_noise]
    mlp_rows, errs, conv = width_sweep(t, data, widths, noise)
    rows += mlp_rows

    mean = {k: np.nanmean(v, axis=0) for k, v in curve.items()}
    peak_mse = counts[int(np.argmax(mean["test_mse"]))]
    peak_err = counts[int(np.argmax(mean["test_error"]))]
    mlp = {f"label noise {q:g}": {k: errs[k][a] for k in errs} for a, q in enumerate(noise)}
    run_dir.figure("double_descent.png", plots.double_descent_panels(
        counts, n, curve, widths, mlp,
        title=f"double descent on {t.dataset} (n={n}): random features and MLP width"))
    mlp_peaks = {}
    for a, q in enumerate(noise):
        te = np.nanmean(errs["test_error"][a], axis=0)
        tr = np.nanmean(errs["train_error"][a], axis=0)
        fitted = [w for w, e in zip(widths, tr) if e <= config.interpolation_tolerance]
        mlp_peaks[f"{q:g}"] = {"peak": peak(errs["test_error"][a], widths),
                               "peak_width": widths[int(np.argmax(te))], "peak_test_error": float(np.max(te)),
                               "first_interpolating_width": fitted[0] if fitted else None,
                               "test_error_smallest_width": float(te[0]), "test_error_largest_width": float(te[-1]),
                               "min_test_error_below_peak": float(np.min(te[: int(np.argmax(te)) + 1]))}
    headline = {
        "n_train": n, "num_seeds": len(list(t.seeds)), "num_feature_draws": len(list(config.rf.seeds)),
        "rf_peak_test_mse": peak(curve["test_mse"], counts), "rf_peak_test_error": peak(curve["test_error"], counts),
        "peak_num_features": peak_mse, "peak_num_features_zero_one": peak_err,
        "peak_test_mse": float(np.max(mean["test_mse"])), "peak_test_error": float(np.max(mean["test_error"])),
        "test_error_fewest_features": float(mean["test_error"][0]),
        "test_error_most_features": float(mean["test_error"][-1]),
        "min_test_error_below_threshold": float(np.min(mean["test_error"][np.asarray(counts) < n])),
        "coef_norm_peak_num_features": counts[int(np.argmax(mean["coef_norm"]))],
        "mlp": mlp_peaks, "label_noise": noise, "mlp_by_noise": [mlp_peaks[f"{q:g}"] for q in noise],
        "points": [{k: r[k] for k in ("kind", "num_features", "width", "random_label_fraction", "seed",
                                      "train_error", "test_error") if k in r} for r in rows],
    }
    conventions = {**conv, "random_features": (
        "phi_j(x) = relu(w_j.x + b_j)/sqrt(p), w_j ~ N(0, I/d), b_j ~ N(0, 1), nested in p; min-norm least squares "
        "on one-hot targets via the kernel form with eigenvalue cutoff (dl_course.models.random_features), float64"),
        "squared_loss": "mean over examples of the squared error summed over the 10 outputs",
        "peak_num_features": "feature count with the largest seed-mean test squared loss (peak_num_features_zero_one: "
                             "largest seed-mean test 0-1 error)",
        "mlp_training": f"{t.optimizer}, batch {'full' if t.batch_size == 0 else t.batch_size}, "
                        f"{t.steps} steps, lr {list(t.learning_rates)}, one hidden layer",
        "label_noise": "random_label_fraction q: round(q n) labels redrawn uniformly over 10 classes (in-graph); "
                       "label_noise = measured fraction of wrong training labels (about 0.9 q)",
        "interpolation_tolerance": config.interpolation_tolerance,
        "peaks": "a peak is claimed only when the paired-by-seed (or by feature draw) differences to both neighbouring "
                 "widths / feature counts have 95% t intervals above 0 (dl_course.measures.statistics.intervals)"}
    metrics = {"num_features": np.asarray(counts), "widths": np.asarray(widths),
               "label_noise_levels": np.asarray(noise),
               **{f"rf_{k}": v for k, v in curve.items()}, **{f"mlp_{k}": v for k, v in errs.items()}}
    results.write_results(run_dir, config, "double_descent", conventions, rows, headline, metrics)
    return headline
