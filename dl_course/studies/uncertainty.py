"""Predictive uncertainty of SGD, SWA, SWAG, MultiSWAG, deep ensembles, MC dropout, temperature
scaling, Laplace and MultiLaplace, in distribution and under dataset shift (Maddox et al. 2019;
Lakshminarayanan et al. 2017; Ovadia et al. 2019; Gal & Ghahramani 2016; Guo et al. 2017; Daxberger
et al. 2021; Eschenhagen et al. 2021).

Orchestration only: the members and their predictives come from ``dl_course.uncertainty.members``
(one sweep over seeds with the SWAG hook, a dropout twin; a Laplace posterior fitted at each
seed's final iterate on the training split), the shifted test sets from
``uncertainty.shifted_sets``, the metrics on every shift level from ``uncertainty.shift_evaluation``.
A validation split carved from the training set is held out of both sweeps; temperature scaling
is fitted on it.
"""

from __future__ import annotations

import numpy as np

from dl_course import results
from dl_course.plotting import calibration as cplot
from dl_course.train.build import load_data
from dl_course.uncertainty import members as mem
from dl_course.uncertainty import shift_evaluation as se
from dl_course.uncertainty.shifted_sets import shifted_test_sets, split_validation


def summary_rows(members: mem.Members, metrics: dict, sets) -> list[dict]:
    """One row per (method, seed, corruption, shift level); level 0 once, corruption ``none``."""
    res = members.result
    seeds, lr = members.seeds, res.grid[0]["learning_rate"]
    rows = []
    for m, vals in metrics.items():
        pooled = m in mem.POOLED
        div = np.asarray((members.dropout if m == "mc_dropout" else res).diverged)
        per = {k: se.by_corruption(vals[k], sets) for k in se.METRICS}
        points = [("none", 0)] + [(c, lv) for c in sets.x for lv in range(1, sets.num_levels + 1)]
        for i in range(vals["nll"].shape[0]):
            for c, lv in points:
                row = {"method": m, "seed": None if pooled else seeds[i], "corruption": c, "shift_level": lv,
                       **{k: float(per[k][next(iter(sets.x)) if c == "none" else c][i, lv]) for k in se.METRICS},
                       "learning_rate": lr, "diverged": bool(div.any() if pooled else div[i])}
                if pooled:
                    row["members"] = [s for s, d in zip(seeds, np.asarray(res.diverged)) if not d]
                rows.append(row)
    return rows


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
    members = mem.train_from_config(config, train_data, run_dir)
    temps = mem.fit_temperatures(members, x_val, y_val)
    laplaces = mem.laplaces_from_config(config, members, train_data.x_train, train_data.y_train)
    preds = mem.predictives_from_config(config, members, se.stack_shifted_inputs(sets), train_data.x_train, temps,
                                        laplace=laplaces)
    metrics, diagrams, probs = se.shift_metrics(preds, sets)
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
    headline = {
        "seeds": seeds,
        "in_distribution": {m: {k: v[k][0] for k in se.METRICS} for m, v in means.items()},
        "shifted_mean_over_levels": shifted,
        "by_level_mean_over_corruptions": means,
        "temperatures": dict(zip(map(str, seeds), temps.tolist())),
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
    results.write_results(run_dir, config, "uncertainty", conventions, summary_rows(members, metrics, sets), headline,
                          {"y_test": sets.y, "seeds": np.asarray(seeds),
                           **{f"probs_{m}": p.astype(np.float32) for m, p in probs.items()},
                           "temperatures": temps})
    return headline
