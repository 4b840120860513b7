"""Predictive uncertainty of SGD, SWA, SWAG, MultiSWAG, deep ensembles, MC dropout, temperature
scaling, Laplace and MultiLaplace, in distribution and under dataset shift (Maddox et al. 2019;
Lakshminarayanan et al. 2017; Ovadia et al. 2019; Gal & Ghahramani 2016; Guo et al. 2017; Daxberger
et al. 2021; Eschenhagen et al. 2021).

Orchestration only: the members and their predictives come from ``dl_course.uncertainty.members``
(one sweep over seeds with the SWAG hook, a dropout twin; a Laplace posterior fitted at each
seed's final iterate on the training split), the shifted test sets from
``uncertainty.shifted_sets``, the metrics on every shift level from ``uncertainty.shift_evaluation``.
A validation split carved from the training set is held out of both sweeps; temperature scaling
(of SGD and of SWA) is fitted on it, and so is the Laplace prior with ``laplace.prior=validation``.

Error bars (``dl_course.measures.statistics.intervals``): every method's clean / level-5 / shift-mean NLL and
ECE with a 95% t interval over seeds (per-seed methods) or over the independent replicates (pooled
methods: ``replicates`` groups of distinct member seeds); the comparisons the study draws —
SWAG vs temperature-scaled SWA, SWAG vs SWA, Laplace vs the MAP net and temperature scaling,
MultiSWAG vs the ensemble — as paired-by-seed (or by-replicate) differences with their CIs.
"""

from __future__ import annotations

import numpy as np

from dl_course import results
from dl_course.data.shifted_sets import shifted_test_sets, split_validation
from dl_course.measures.statistics import intervals
from dl_course.plotting import calibration as cplot
from dl_course.train.build import load_data
from dl_course.uncertainty import members as mem
from dl_course.uncertainty import shift_evaluation as se


def summary_rows(members: mem.Members, metrics: dict, sets, replicates: int = 1) -> list[dict]:
    """One row per (method, seed or replicate, corruption, shift level); level 0 once, corruption
    ``none``; ``replicate``: the seed group of the row (pooled rows: one per replicate)."""
    res = members.result
    seeds, lr = members.seeds, res.grid[0]["learning_rate"]
    groups = mem.replicate_groups(seeds, replicates)
    ok = dict(zip(seeds, ~np.asarray(res.diverged)))
    size = min(sum(ok[s] for s in g) for g in groups)
    rows = []
    for m, vals in metrics.items():
        pooled = m in mem.POOLED
        div = np.asarray((members.dropout if m == "mc_dropout" else res).diverged)
        per = {k: se.by_corruption(vals[k], sets) for k in se.METRICS}
        points = [("none", 0)] + [(c, lv) for c in sets.x for lv in range(1, sets.num_levels + 1)]
        for i in range(vals["nll"].shape[0]):
            for c, lv in points:
                rep_id = i if pooled else i // len(groups[0])
                row = {"method": m, "seed": None if pooled else seeds[i], "replicate": rep_id, "corruption": c,
                       "shift_level": lv,
                       **{k: float(per[k][next(iter(sets.x)) if c == "none" else c][i, lv]) for k in se.METRICS},
                       "learning_rate": lr, "diverged": bool(div.any() if pooled else div[i])}
                if pooled:
                    row["members"] = [s for s in groups[i] if ok[s]][:size]
                rows.append(row)
    return rows


# (name, a, b, metrics): paired differences a - b over seeds (per-seed methods) or replicates (pooled)
COMPARISONS = (("swag_vs_temp_swa", "swag", "temp_swa"), ("swag_vs_swa", "swag", "swa"),
               ("temp_swa_vs_swa", "temp_swa", "swa"), ("laplace_vs_sgd", "laplace", "sgd"),
               ("laplace_vs_temp_scaling", "laplace", "temp_scaling"),
               ("multiswag_vs_ensemble", "multiswag", "ensemble"),
               ("multilaplace_vs_ensemble", "multilaplace", "ensemble"))
COMPARED = ("nll", "ece")


def _names(level):
    return [f"{w}_{k}" for w in ("clean", f"level{level}", "shift") for k in COMPARED]


def method_cis(values: dict, level: int) -> dict:
    """``method -> clean/level-L/shift NLL and ECE -> {estimate, ci, n}``: 95% t interval over the
    method's seeds (or replicates, for pooled methods)."""
    return {m: {n: intervals.mean_ci(v[n]) for n in _names(level)} for m, v in values.items()}


def comparisons(values: dict, level: int) -> dict:
    """Paired differences ``a − b`` of :data:`COMPARISONS` (same seeds, or same replicates) with
    their 95% CIs and a verdict (``lower`` / ``higher`` / ``within noise``); ``a_not_worse``: the
    number of seeds with ``a ≤ b``."""
    out = {}
    for name, a, b in COMPARISONS:
        if a not in values or b not in values:
            continue
        out[name] = {}
        for n in _names(level):
            d = intervals.paired_difference_ci(values[a][n], values[b][n])
            out[name][n] = {**d, "verdict": intervals.verdict(d),
                            "a_not_worse": int(np.sum(values[a][n] <= values[b][n])), "of": len(values[a][n])}
    return out


def signed_calibration(probs: dict, y) -> dict:
    """``method -> {estimate, ci}`` of mean confidence − accuracy on the clean test set (positive:
    overconfident, negative: underconfident) over seeds or replicates."""
    y = np.asarray(y)
    return {m: intervals.mean_ci(p.max(-1).mean(-1) - (p.argmax(-1) == y).mean(-1)) for m, p in probs.items()
            if p.shape[0] > 1}


def laplace_prior_arm(config, members, laplaces, preds_fn, sets, values_sgd) -> dict:
    """One Laplace prior rule's numbers: τ per seed, clean / level-L NLL per seed, the paired
    difference to the MAP net's clean NLL and the seeds where Laplace is not worse."""
    metrics, _, _ = se.shift_metrics(preds_fn(laplaces), sets)
    v = se.member_values(metrics, sets)["laplace"]
    lvl = f"level{sets.num_levels}_nll"
    d = intervals.paired_difference_ci(v["clean_nll"], values_sgd["clean_nll"])
    return {"prior_precision": np.asarray(laplaces.prior_precision).tolist(),
            "clean_nll": v["clean_nll"].tolist(), "clean_nll_ci": intervals.mean_ci(v["clean_nll"])["ci"],
            lvl: float(np.mean(v[lvl])), f"{lvl}_ci": intervals.mean_ci(v[lvl])["ci"],
            "clean_ece": float(np.mean(v["clean_ece"])),
            "minus_map_clean_nll": {**d, "verdict": intervals.verdict(d)},
            "seeds_not_worse_than_map": int(np.sum(v["clean_nll"] <= values_sgd["clean_nll"])),
            "of": len(v["clean_nll"])}


def _figures(run_dir, metrics, diagrams, sets, title):
    corruptions, num_levels = list(sets.x), sets.num_levels
    per_corruption = {c: {m: {k: se.by_corruption(v[k], sets)[c] for k in se.METRICS} for m, v in metrics.items()}
                      for c in corruptions}
    run_dir.figure("metrics_vs_shift.png", cplot.shift_figure(per_corruption, se.METRICS))
    run_dir.figure("nll_vs_shift.png", cplot.mean_shift_figure(
        se.level_means(metrics, sets), ("nll", "ece", "accuracy"),
        f"{title}: mean over seeds and the {len(corruptions)} corruptions ({', '.join(corruptions)})"))
    # Reliability diagrams, clean and at the middle shift level (all corruptions), pooling every
    # member's predictions as points.
    mid = (num_levels + 1) // 2
    segments = {"clean": [0], f"shift level {mid}": [1 + ci * num_levels + mid - 1 for ci in range(len(corruptions))]}
    cells = {m: [(cond, *se.pooled_reliability(d, segs)) for cond, segs in segments.items()]
             for m, d in diagrams.items()}
    run_dir.figure("reliability.png", cplot.reliability_grid(
        cells, f"{title}: reliability (15 equal-width bins; predictions of all seeds pooled)"))


def run(config, run_dir: results.RunDir) -> dict:
    """Train (two sweeps), predict with every method on the clean and shifted test sets, write the
    table, figures, summary.json and metrics.npz (``probs_<method>`` at shift level 0)."""
    data = load_data(config.train)
    sets = shifted_test_sets(data, int(config.shift.max_examples), list(config.shift.corruptions))
    train_data, x_val, y_val = split_validation(data, float(config.val_fraction), int(config.val_seed))
    replicates = int(config.replicates)
    mem.replicate_groups(config.train.seeds, replicates)  # fail before training
    members = mem.train_from_config(config, train_data, run_dir)
    temps = mem.fit_temperatures(members, x_val, y_val, train_data.x_train)
    laplaces = mem.laplaces_from_config(config, members, train_data.x_train, train_data.y_train,
                                        validation=(x_val, y_val))
    x_all = se.stack_shifted_inputs(sets)
    preds = mem.predictives_from_config(config, members, x_all, train_data.x_train, temps, laplace=laplaces)
    metrics, diagrams, probs = se.shift_metrics(preds, sets)
    values = se.member_values(metrics, sets)
    # Both prior rules of the Laplace side by side (the configured one drives the laplace methods).
    priors = {}
    for rule in ("evidence", "validation"):
        la = laplaces if rule == str(config.laplace.prior) else mem.laplaces_from_config(
            config, members, train_data.x_train, train_data.y_train, validation=(x_val, y_val), prior=rule)
        priors[rule] = laplace_prior_arm(config, members, la, lambda la_: mem.predictives_from_config(
            config, members, x_all, train_data.x_train, temps, methods=("laplace",), laplace=la_), sets, values["sgd"])
    means = se.level_means(metrics, sets)
    num_levels = sets.num_levels
    print(f"{'method':>13} " + " ".join(f"{'nll@' + str(lv):>7}" for lv in range(num_levels + 1))
          + f" {'ece@0':>6} {'ece@' + str(num_levels):>6} {'acc@0':>6}")
    for m, v in means.items():
        print(f"{m:>13} " + " ".join(f"{x:>7.3f}" for x in v["nll"])
              + f" {v['ece'][0]:>6.3f} {v['ece'][-1]:>6.3f} {v['accuracy'][0]:>6.3f}")
    _figures(run_dir, metrics, diagrams, sets, f"{config.train.model} on {config.train.dataset}")
    seeds = members.seeds
    shifted = {m: {k: float(np.mean(v[k][1:])) for k in se.METRICS} for m, v in means.items()}
    cmp = comparisons(values, num_levels)
    level = f"level{num_levels}_nll"
    swag_t = cmp["swag_vs_temp_swa"]
    headline = {
        "seeds": seeds,
        "replicates": mem.replicate_groups(seeds, replicates),
        "ci": method_cis(values, num_levels),
        "comparisons": cmp,
        "swag_beats_temp_swa": {w: {"lower": "yes", "higher": "no, worse", "within noise": "no (within noise)"}[
            swag_t[f"{w}_nll"]["verdict"]] for w in ("clean", "level" + str(num_levels), "shift")},
        "laplace_priors": priors,
        "laplace_target": {"clean_nll_not_worse_than_map_every_seed":
                               priors[str(config.laplace.prior)]["seeds_not_worse_than_map"] == len(seeds)
                               if str(config.laplace.prior) in priors else None,
                           f"{level}_below_sgd": cmp["laplace_vs_sgd"][level]["verdict"] == "lower",
                           f"{level}_below_temp_scaling": cmp["laplace_vs_temp_scaling"][level]["verdict"] == "lower"},
        "confidence_minus_accuracy": signed_calibration(probs, sets.y),
        "in_distribution": {m: {k: v[k][0] for k in se.METRICS} for m, v in means.items()},
        "shifted_mean_over_levels": shifted,
        "by_level_mean_over_corruptions": means,
        "temperatures": {m: dict(zip(map(str, seeds), t.tolist())) for m, t in temps.items()},
        "swag": members.swag,
        "laplace": mem.laplace_summary(config, members, laplaces),
        "num_diverged": int(members.result.diverged.sum()),
        "seconds": members.result.timing["total_s"] + (members.dropout.timing["total_s"] if members.dropout else 0.0),
    }
    conventions = {**members.result.conventions, **mem.CONVENTIONS, "shift": sets.intensities,
                   "validation": train_data.info["validation"],
                   "probs_npz": "probs_<method>: float32 model-average probabilities on the clean test set, "
                                "[n_seeds or 1 (pooled), n_test, n_classes], seeds in the order of headline.seeds "
                                "(also saved as 'seeds')"}
    conventions["error_bars"] = (
        "95% Student-t intervals (dl_course.measures.statistics.intervals) over seeds for per-seed methods "
        "and over the independent replicates for pooled ones; comparisons: paired differences a - b over the "
        "same seeds / replicates; 'within noise' when the CI contains 0"
    )
    results.write_results(run_dir, config, "uncertainty", conventions, summary_rows(members, metrics, sets, replicates),
                          headline,
                          {"y_test": sets.y, "seeds": np.asarray(seeds),
                           **{f"probs_{m}": p.astype(np.float32) for m, p in probs.items()},
                           **{f"temperatures_{m}": t for m, t in temps.items()}})
    return headline
