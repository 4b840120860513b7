"""Out-of-distribution detection with every score of every uncertainty method (Hendrycks & Gimpel
2017, "A baseline for detecting misclassified and out-of-distribution examples"; Lakshminarayanan
et al. 2017, §3.5; Maddox et al. 2019; Daxberger et al. 2021; Liu et al. 2020 for the energy score).

Orchestration only. The networks are trained on the in-distribution classes of
``uncertainty.ood_benchmark`` (the held-out classes' test examples are the "near" OOD set, noise
inputs matched to the training inputs the "far" ones) as the members of
``dl_course.uncertainty.members`` (one sweep over seeds with the SWAG hook, one for MC dropout;
temperature fitted on a validation split of the in-distribution training set; a last-layer K-FAC
Laplace posterior per seed, pooled for MultiLaplace).

For every method, member, score and OOD set: AUROC, AUPR (OOD positive, "AUPR-Out") and
FPR@95%TPR from ``dl_course.uncertainty.ood`` — OOD is the POSITIVE class and every score is
oriented so that higher = more OOD.
"""

from __future__ import annotations

import numpy as np

from dl_course import results
from dl_course.data.shifted_sets import split_validation
from dl_course.errors import ConfigError
from dl_course.plotting import ood as oplot
from dl_course.train.build import load_data
from dl_course.uncertainty import members as mem
from dl_course.uncertainty import ood as ood_lib
from dl_course.uncertainty.ood_benchmark import ood_benchmark

METRICS = ("auroc", "aupr", "fpr95")
CONVENTIONS = {
    "positive_class": ood_lib.CONVENTION,
    "fpr95": "false-positive rate on in-distribution test inputs at the first threshold with >= 95% TPR on OOD",
    "aupr": "average precision with OOD positive (AUPR-Out); chance = OOD fraction",
    "per_seed_vs_pooled": mem.CONVENTIONS["per_seed_vs_pooled"],
    "scores": "computed on the method's predictive [S, N, K]; logit scores averaged over samples",
    "evaluation_mode": mem.CONVENTIONS["evaluation_mode"],
    "dtype": "float32 network outputs; detection metrics in float64 numpy",
}


def detection_rows(members, scores: dict, n_in: int, set_sizes: dict) -> list[dict]:
    """One row per (method, member, score, OOD set) with ``auroc``, ``aupr``, ``fpr95``."""
    res = members.result
    seeds, lr, div = members.seeds, res.grid[0]["learning_rate"], np.asarray(res.diverged)
    rows = []
    for m, by_score in scores.items():
        pooled = m in mem.POOLED
        d = np.asarray(members.dropout.diverged) if m == "mc_dropout" else div
        for score, s in by_score.items():
            for i in range(s.shape[0]):
                start = n_in
                for name, size in set_sizes.items():
                    r = ood_lib.detection_metrics(s[i, :n_in], s[i, start:start + size])
                    start += size
                    rows.append({"method": m, "seed": None if pooled else seeds[i], "score": score, "ood_set": name,
                                 "auroc": r["auroc"], "aupr": r["aupr"], "fpr95": r["fpr_at_95_tpr"],
                                 "learning_rate": lr, "diverged": bool(d.any() if pooled else d[i])})
    return rows


def mean_table(rows: list[dict]) -> dict:
    """``ood_set -> method -> score -> {auroc, aupr, fpr95}``: means over seeds."""
    acc: dict = {}
    for r in rows:
        acc.setdefault(r["ood_set"], {}).setdefault(r["method"], {}).setdefault(r["score"], []).append(r)
    return {o: {m: {s: {k: float(np.mean([r[k] for r in v])) for k in METRICS} for s, v in by_s.items()}
                for m, by_s in by_m.items()} for o, by_m in acc.items()}


def _figures(run_dir, table, scores, n_in, set_sizes, names, title):
    methods = list(scores)
    auroc = {o: {m: {s: by_m[m][s]["auroc"] for s in names} for m in methods} for o, by_m in table.items()}
    run_dir.figure("auroc.png", oplot.auroc_table_figure(auroc, methods, names, title))
    start = n_in
    for o, size in set_sizes.items():
        first = {m: {s: scores[m][s][0] for s in names} for m in methods}
        run_dir.figure(f"score_histograms_{o}.png", oplot.score_histogram_grid(
            {m: {s: v[:n_in] for s, v in by_s.items()} for m, by_s in first.items()},
            {m: {s: v[start:start + size] for s, v in by_s.items()} for m, by_s in first.items()},
            f"{title}: in-distribution test vs {o} (first seed of per-seed methods)"))
        start += size


def run(config, run_dir: results.RunDir) -> dict:
    """Train on the in-distribution classes, score every method on in-distribution test inputs
    and each OOD set, write the table, figures, summary.json and metrics.npz."""
    methods = mem.check_methods(config.methods)
    names = tuple(config.scores)
    bad = [s for s in names if s not in ood_lib.SCORES]
    if bad or not names:
        raise ConfigError(f"unknown scores {bad}; valid: {', '.join(ood_lib.SCORES)}")
    data = load_data(config.train)
    in_data, sets = ood_benchmark(data, config.ood.held_out_classes, config.ood.noise, int(config.ood.seed))
    train_data, x_val, y_val = split_validation(in_data, float(config.val_fraction), int(config.val_seed))
    members = mem.train_from_config(config, train_data, run_dir, methods)
    temps = mem.fit_temperatures(members, x_val, y_val) if "temp_scaling" in methods else None
    x = np.concatenate([in_data.x_test] + list(sets.values()))
    laplaces = mem.laplaces_from_config(config, members, train_data.x_train, train_data.y_train, methods)
    preds = mem.predictives_from_config(config, members, x, train_data.x_train, temps, methods, laplace=laplaces)
    n_in, sizes = in_data.n_test, {k: len(v) for k, v in sets.items()}
    scores = {}
    for m, p in preds.items():
        by_score = mem.member_ood_scores(p.sample_logits, names)   # a jitted dict comes back sorted by key
        scores[m] = {s: np.asarray(by_score[s]) for s in names}
    accuracy = {m: float(np.mean(mem.predictive_accuracy(p.sample_logits[:, :, :n_in], in_data.y_test)))
                for m, p in preds.items()}
    rows = detection_rows(members, scores, n_in, sizes)
    table = mean_table(rows)
    for o, by_m in table.items():
        print(f"AUROC, in-distribution test vs {o} ({ood_lib.CONVENTION}):")
        print(f"{'method':>13} " + " ".join(f"{s:>18}" for s in names))
        for m, by_s in by_m.items():
            print(f"{m:>13} " + " ".join(f"{by_s[s]['auroc']:>18.3f}" for s in names))
    _figures(run_dir, table, scores, n_in, sizes, names, f"{config.train.model} on {in_data.name}")
    best = {o: max(((m, s) for m in by_m for s in by_m[m]), key=lambda ms: by_m[ms[0]][ms[1]]["auroc"])
            for o, by_m in table.items()}
    headline = {"auroc": {o: {m: {s: v["auroc"] for s, v in by_s.items()} for m, by_s in by_m.items()}
                          for o, by_m in table.items()},
                "best": {o: {"method": m, "score": s, "auroc": table[o][m][s]["auroc"]} for o, (m, s) in best.items()},
                "in_distribution_accuracy": accuracy, "ood_sets": {k: int(v) for k, v in sizes.items()},
                "num_in_distribution_test": int(n_in), "num_diverged": int(members.result.diverged.sum()),
                "laplace": mem.laplace_summary(config, members, laplaces)}
    conventions = {**members.result.conventions, **CONVENTIONS, "ood_sets": {
        "held_out_classes": f"test examples of classes {list(config.ood.held_out_classes)} of {data.name}; "
                            "the networks never see these classes",
        "noise": "ood_sets.noise_inputs of the in-distribution training inputs (gaussian: per-feature "
                 "mean/std; uniform: global range)",
    }, "validation": train_data.info["validation"]}
    results.write_results(run_dir, config, "ood_detection", conventions, rows, headline,
                          {"y_in": in_data.y_test, "seeds": np.asarray(members.seeds),
                           "set_sizes": np.asarray([n_in] + list(sizes.values())),
                           **{f"scores_{m}_{s}": v.astype(np.float32) for m, by_s in scores.items()
                              for s, v in by_s.items()}})
    return headline
