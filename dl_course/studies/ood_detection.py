"""Out-of-distribution detection with every score of every uncertainty method (Hendrycks & Gimpel
2017, "A baseline for detecting misclassified and out-of-distribution examples"; Lakshminarayanan
et al. 2017, §3.5; Maddox et al. 2019; Liu et al. 2020 for the energy score).

The networks are trained on the in-distribution classes only (``ood_sets.split_classes``: the
held-out classes' test examples are the "near" OOD set) with the members of
``dl_course.studies.uncertainty`` (one sweep over seeds with the SWAG hook, one for MC dropout;
temperature fitted on a validation split of the in-distribution training set). "Far" OOD sets are
noise inputs matched to the training inputs' statistics (``ood_sets.noise_inputs``).

For every method, member, score and OOD set: AUROC, AUPR (OOD positive, "AUPR-Out") and
FPR@95%TPR from ``dl_course.uncertainty.ood`` — OOD is the POSITIVE class and every score is
oriented so that higher = more OOD. Scores are computed vmapped over members.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from dl_course import results
from dl_course.studies import uncertainty as unc
from dl_course.train.build import load_data
from dl_course.train.config import ConfigError
from dl_course.uncertainty import calibration, ood_sets
from dl_course.uncertainty import ood as ood_lib
from dl_course.uncertainty.predictive import Predictive

METRICS = ("auroc", "aupr", "fpr95")
CONVENTIONS = {
    "positive_class": ood_lib.CONVENTION,
    "fpr95": "false-positive rate on in-distribution test inputs at the first threshold with >= 95% TPR on OOD",
    "aupr": "average precision with OOD positive (AUPR-Out); chance = OOD fraction",
    "per_seed_vs_pooled": unc.CONVENTIONS["per_seed_vs_pooled"],
    "scores": "computed on the method's predictive [S, N, K]; logit scores averaged over samples",
    "evaluation_mode": unc.CONVENTIONS["evaluation_mode"],
    "dtype": "float32 network outputs; detection metrics in float64 numpy",
}


def make_sets(config, data):
    """``(in-distribution dataset, {ood set name: inputs})``: held-out classes' test examples and
    ``config.ood.noise`` noise sets of ``n_test`` inputs each."""
    held = list(config.ood.held_out_classes)
    try:
        in_data, held_data = ood_sets.split_classes(data, held) if held else (data, None)
        sets = {} if held_data is None else {"held_out_classes": held_data.x_test}
        for kind in config.ood.noise:
            sets[f"{kind}_noise"] = ood_sets.noise_inputs(in_data.x_train, in_data.n_test, int(config.ood.seed), kind)
    except ValueError as e:
        raise ConfigError(str(e).splitlines()[0]) from None
    if not sets:
        raise ConfigError("no OOD set: give ood.held_out_classes and/or ood.noise")
    return in_data, sets


@functools.partial(jax.jit, static_argnames=("names",))
def _scores(logits, names):
    """``[M, S, N, K]`` -> score name -> ``[M, N]`` (higher = more OOD)."""
    return jax.vmap(lambda lg: ood_lib.ood_scores(Predictive(lg), names))(logits)


@jax.jit
def _accuracy(logits, labels):
    return jax.vmap(lambda lg: calibration.accuracy(Predictive(lg).probs, labels))(logits)


def detection_rows(members, scores: dict, n_in: int, set_sizes: dict) -> list[dict]:
    """One row per (method, member, score, OOD set) with ``auroc``, ``aupr``, ``fpr95``."""
    res = members.result
    seeds, lr, div = [g["seed"] for g in res.grid], res.grid[0]["learning_rate"], np.asarray(res.diverged)
    rows = []
    for m, by_score in scores.items():
        pooled = m in unc.POOLED
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
    from matplotlib.figure import Figure

    from dl_course.plotting import uncertainty as uplot

    methods = list(scores)
    fig = Figure(figsize=(1.2 + 1.1 * len(names) * len(table), 0.9 + 0.45 * len(methods)), layout="constrained")
    axes = fig.subplots(1, len(table), squeeze=False)[0]
    for ax, (o, by_m) in zip(axes, table.items()):
        mat = np.asarray([[by_m[m][s]["auroc"] for s in names] for m in methods])
        im = ax.imshow(mat, vmin=0.0, vmax=1.0, cmap="RdYlGn", aspect="auto")  # red: worse than chance
        for (r, c), v in np.ndenumerate(mat):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(methods)), methods if ax is axes[0] else [""] * len(methods), fontsize=7)
        ax.set_title(o, fontsize=9)
    fig.colorbar(im, ax=axes, label="AUROC (mean over seeds; 0.5 = chance)")
    fig.suptitle(f"{title}; {uplot.OOD_NOTE}", fontsize="small")
    run_dir.figure("auroc.png", fig)
    start = n_in
    for o, size in set_sizes.items():
        fig = Figure(figsize=(2.6 * len(names), 2.1 * len(methods)), layout="constrained")
        axes = fig.subplots(len(methods), len(names), squeeze=False)
        for i, m in enumerate(methods):
            for j, s in enumerate(names):
                v = scores[m][s][0]
                uplot.plot_score_histograms(axes[i, j], v[:n_in], v[start:start + size], s, bins=40)
                auroc = ood_lib.auroc(v[:n_in], v[start:start + size])
                axes[i, j].set_title(f"{m}: AUROC {auroc:.3f}", fontsize=8)
                axes[i, j].set_xlabel(axes[i, j].get_xlabel(), fontsize=7)
                if (i, j) != (0, 0):
                    axes[i, j].get_legend().remove()
        start += size
        fig.suptitle(f"{title}: in-distribution test vs {o} (first seed of per-seed methods); {uplot.OOD_NOTE}",
                     fontsize="small")
        run_dir.figure(f"score_histograms_{o}.png", fig)


def run(config, run_dir: results.RunDir) -> dict:
    """Train on the in-distribution classes, score every method on in-distribution test inputs
    and each OOD set, write the table, figures, summary.json and metrics.npz."""
    methods = tuple(config.methods)
    bad = [m for m in methods if m not in unc.METHODS]
    if bad or not methods:
        raise ConfigError(f"unknown methods {bad}; valid: {', '.join(unc.METHODS)}")
    names = tuple(config.scores)
    bad = [s for s in names if s not in ood_lib.SCORES]
    if bad or not names:
        raise ConfigError(f"unknown scores {bad}; valid: {', '.join(ood_lib.SCORES)}")
    data = load_data(config)
    in_data, sets = make_sets(config, data)
    train_data, x_val, y_val = unc.split_validation(in_data, float(config.val_fraction), int(config.val_seed))
    members = unc.train_members(config, train_data, run_dir, methods)
    temps = unc.fit_temperatures(members, x_val, y_val) if "temp_scaling" in methods else None
    x = np.concatenate([in_data.x_test] + list(sets.values()))
    preds = unc.predictives(config, members, x, train_data.x_train, temps, methods)
    n_in, sizes = in_data.n_test, {k: len(v) for k, v in sets.items()}
    scores = {}
    for m, p in preds.items():
        by_score = _scores(p.sample_logits, names)
        scores[m] = {s: np.asarray(by_score[s]) for s in names}
    accuracy = {m: float(np.mean(_accuracy(p.sample_logits[:, :, :n_in], in_data.y_test))) for m, p in preds.items()}
    rows = detection_rows(members, scores, n_in, sizes)
    table = mean_table(rows)
    for o, by_m in table.items():
        print(f"AUROC, in-distribution test vs {o} ({ood_lib.CONVENTION}):")
        print(f"{'method':>13} " + " ".join(f"{s:>18}" for s in names))
        for m, by_s in by_m.items():
            print(f"{m:>13} " + " ".join(f"{by_s[s]['auroc']:>18.3f}" for s in names))
    title = f"{config.model} on {in_data.name}"
    _figures(run_dir, table, scores, n_in, sizes, names, title)
    best = {o: max(((m, s) for m in by_m for s in by_m[m]), key=lambda ms: by_m[ms[0]][ms[1]]["auroc"])
            for o, by_m in table.items()}
    headline = {"auroc": {o: {m: {s: v["auroc"] for s, v in by_s.items()} for m, by_s in by_m.items()}
                          for o, by_m in table.items()},
                "best": {o: {"method": m, "score": s, "auroc": table[o][m][s]["auroc"]} for o, (m, s) in best.items()},
                "in_distribution_accuracy": accuracy, "ood_sets": {k: int(v) for k, v in sizes.items()},
                "num_in_distribution_test": int(n_in), "num_diverged": int(members.result.diverged.sum())}
    conventions = {**members.result.conventions, **CONVENTIONS, "ood_sets": {
        "held_out_classes": f"test examples of classes {list(config.ood.held_out_classes)} of {data.name}; "
                            "the networks never see these classes",
        "noise": "ood_sets.noise_inputs of the in-distribution training inputs (gaussian: per-feature "
                 "mean/std; uniform: global range)",
    }, "validation": train_data.info["validation"]}
    results.write_results(run_dir, config, "ood_detection", conventions, rows, headline,
                          {"y_in": in_data.y_test, "seeds": np.asarray([g["seed"] for g in members.result.grid]),
                           "set_sizes": np.asarray([n_in] + list(sizes.values())),
                           **{f"scores_{m}_{s}": v.astype(np.float32) for m, by_s in scores.items()
                              for s, v in by_s.items()}})
    return headline
