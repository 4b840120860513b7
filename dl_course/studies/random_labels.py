"""Fitting random labels, shuffled inputs and random inputs (Zhang et al. 2017).

Zhang, Bengio, Hardt, Recht & Vinyals (2017, ICLR), "Understanding deep learning requires
rethinking generalization", Fig. 1: overparameterized networks trained by SGD reach 100% training
accuracy whether a fraction ``p`` of the labels is replaced by random ones, the input pixels are
shuffled by one fixed permutation, or the inputs are Gaussian noise; test accuracy falls to chance
as ``p → 1``, and fitting takes longer the more labels are random. Hence the network's capacity
alone cannot explain generalization.

Protocol: for each model of ``config.models`` (default the MLP; the 1D CNN as an option), one sweep
over seeds × the fractions ``p``: the engine randomizes the labels in-graph per run
(``random_label_fraction``: exactly ``round(p n)`` labels redrawn uniformly over the classes, a set
growing with ``p`` for a given seed), so every ``p`` trains in one vmapped program. Two more sweeps
per model with clean labels: inputs under one fixed permutation of the 40 positions (train and
test), and Gaussian-noise training inputs with the training set's mean and standard deviation (test
inputs untouched). ``steps_to_fit`` is the first evaluation step with 100% accuracy on the training
labels the run was trained on (:func:`dl_course.measures.steps_to_fit`).

Config: ``config.train`` is the engine's (its ``model`` / ``model_options`` are replaced by each
entry of ``models``); the study's keys are ``models``, ``random_label_fractions``,
``variant_seeds`` and ``random_inputs_seed``."""

from __future__ import annotations

import copy

import numpy as np

from dl_course import data as data_lib
from dl_course import results
from dl_course.measures import corrupted_fraction, steps_to_fit
from dl_course.train import sweep
from dl_course.train.build import load_data


def _model_config(config, name):
    """The engine config of model ``name`` of ``config.models`` (its options replace ``model_options``)."""
    cfg = copy.deepcopy(config.train)
    cfg.model = name
    cfg.model_options = copy.deepcopy(config.models[name])
    return cfg


def run(config, run_dir: results.RunDir) -> dict:
    """Train, per model, the random-label sweep and the two input corruptions; plot; write."""
    from dl_course.plotting import capacity as plots

    t = config.train
    data = load_data(t)
    variants = {"shuffled_inputs": data_lib.load(t.dataset, **{**t.dataset_options.to_dict(), "shuffle": True}),
                "random_inputs": data_lib.random_inputs(data, seed=config.random_inputs_seed)}
    fractions = [float(p) for p in config.random_label_fractions]
    rows, curves, fits, arrays, conventions, timing = [], [], [], {}, None, {}
    steps = None
    for name in config.models:
        cfg = _model_config(config, name)
        res = sweep(cfg, data=data, progress=True, random_label_fraction=fractions)
        conventions = conventions or res.conventions
        steps = res.steps
        timing[name] = res.timing["total_s"]
        fit = steps_to_fit(res.steps, res.metrics["train_accuracy"])
        noise = corrupted_fraction(res.train_labels(data), data.y_train)
        for i, g in enumerate(res.grid):
            rows.append({"model": name, "inputs": "original", "random_label_fraction": g["random_label_fraction"],
                         "corrupted_label_fraction": float(noise[i]), "seed": g["seed"],
                         "learning_rate": g["learning_rate"],
                         "final_train_accuracy": float(res.metrics["train_accuracy"][i, -1]),
                         "final_test_accuracy": float(res.metrics["test_accuracy"][i, -1]),
                         "final_train_loss": float(res.metrics["train_loss"][i, -1]),
                         "steps_to_fit": None if np.isnan(fit[i]) else int(fit[i]), "diverged": bool(res.diverged[i])})
        arrays[f"{name}_train_loss"] = res.metrics["train_loss"]
        arrays[f"{name}_train_accuracy"] = res.metrics["train_accuracy"]
        arrays[f"{name}_test_accuracy"] = res.metrics["test_accuracy"]
        arrays[f"{name}_random_label_fraction"] = np.array([g["random_label_fraction"] for g in res.grid])
        arrays[f"{name}_seed"] = np.array([g["seed"] for g in res.grid])
        p_runs = arrays[f"{name}_random_label_fraction"]
        style = "-" if len(curves) == 0 else "--"
        for p in fractions:
            sel = p_runs == p
            curves.append({"loss": np.nanmean(res.metrics["train_loss"][sel], 0), "p": p, "style": style,
                           "label": f"{name}, p={p:g}"})
        series = {"label": name, "marker": "o" if style == "-" else "s", "extra": [],
                  "p": fractions,
                  "steps_to_fit": [np.nanmean(fit[p_runs == p]) if np.isfinite(fit[p_runs == p]).all() else np.nan
                                   for p in fractions],
                  "test_accuracy": [float(np.mean(res.metrics["test_accuracy"][p_runs == p, -1])) for p in fractions]}
        for vname, vdata in variants.items():
            vres = sweep(cfg, data=vdata, progress=True, seeds=config.variant_seeds)
            timing[f"{name}_{vname}"] = vres.timing["total_s"]
            vfit = steps_to_fit(vres.steps, vres.metrics["train_accuracy"])
            for i, g in enumerate(vres.grid):
                rows.append({"model": name, "inputs": vname.replace("_inputs", ""), "random_label_fraction": 0.0,
                             "corrupted_label_fraction": 0.0, "seed": g["seed"], "learning_rate": g["learning_rate"],
                             "final_train_accuracy": float(vres.metrics["train_accuracy"][i, -1]),
                             "final_test_accuracy": float(vres.metrics["test_accuracy"][i, -1]),
                             "final_train_loss": float(vres.metrics["train_loss"][i, -1]),
                             "steps_to_fit": None if np.isnan(vfit[i]) else int(vfit[i]),
                             "diverged": bool(vres.diverged[i])})
            arrays[f"{name}_{vname}_train_loss"] = vres.metrics["train_loss"]
            arrays[f"{name}_{vname}_test_accuracy"] = vres.metrics["test_accuracy"]
            curves.append({"loss": np.nanmean(vres.metrics["train_loss"], 0), "p": None, "style": style,
                           "label": f"{name}, {vname.replace('_', ' ')}",
                           "color": "tab:green" if vname == "shuffled_inputs" else "tab:gray"})
            series["extra"].append((vname.replace("_", " "),
                                    float(np.mean(vfit)) if np.isfinite(vfit).all() else np.nan,
                                    float(np.mean(vres.metrics["test_accuracy"][:, -1]))))
        fits.append(series)

    run_dir.figure("random_labels.png", plots.random_labels_panels(
        steps, curves, fits, title=f"fitting random labels on {t.dataset} (n={data.n_train}, "
                                   f"{t.optimizer}, lr {t.learning_rates[0]:g}, batch {t.batch_size})"))
    headline = {"n_train": data.n_train, "random_label_fractions": fractions, "num_runs": len(rows),
                "num_diverged": int(sum(r["diverged"] for r in rows)), "sweep_seconds": timing}
    for s in fits:
        name = s["label"]
        orig = [r for r in rows if r["model"] == name and r["inputs"] == "original"]
        headline[name] = {
            "all_fit": all(r["steps_to_fit"] is not None for r in orig),
            "steps_to_fit_by_p": {f"{p:g}": (None if np.isnan(v) else float(v))
                                  for p, v in zip(fractions, s["steps_to_fit"])},
            "test_accuracy_by_p": {f"{p:g}": float(v) for p, v in zip(fractions, s["test_accuracy"])},
            "steps_to_fit": [None if np.isnan(v) else float(v) for v in s["steps_to_fit"]],  # in fraction order
            "test_accuracy": [float(v) for v in s["test_accuracy"]],
            **{f"{lab.replace(' ', '_')}_steps_to_fit": (None if np.isnan(st) else st) for lab, st, _ in s["extra"]},
            **{f"{lab.replace(' ', '_')}_test_accuracy": acc for lab, _, acc in s["extra"]},
        }
    conventions = {**conventions, "label_randomization": (
        "engine in-graph: exactly round(p n) training labels redrawn uniformly over the 10 classes per run "
        "(test labels untouched); corrupted_label_fraction is the measured fraction that changed"),
        "shuffled_inputs": "one fixed permutation of the 40 positions (seed 0), train and test",
        "random_inputs": f"training inputs i.i.d. Gaussian with the training set's mean and std "
                         f"(seed {config.random_inputs_seed}); "
                         "test inputs untouched",
        "steps_to_fit": f"first evaluation step (every {t.eval_every}) with 100% accuracy on the run's "
                        "training labels; "
                        "null if never"}
    results.write_results(run_dir, config, "random_labels", conventions, rows, headline,
                          {"steps": steps, **arrays})
    return headline
