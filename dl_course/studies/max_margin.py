"""Implicit bias on separable data: GD → ℓ2 max margin (Soudry et al. 2018), sign descent / Adam → ℓ∞.

On linearly separable data, the logistic loss of a linear model ``f(x) = wᵀx`` (no bias) has no
minimizer: the loss → 0 only as ``‖w‖ → ∞``, and *which direction* ``w(t)/‖w(t)‖`` the optimizer
converges to is its implicit bias:

* GD (any step below ``2/β``): the ℓ2 max-margin (hard-margin SVM) direction, with
  ``‖w(t)‖ ≈ log(t)/γ*₂`` and an angle gap that closes only like ``1/log t`` (Soudry, Hoffer,
  Nacson, Gunasekar & Srebro 2018, JMLR 19, Thm. 3). Normalized GD reaches the same direction
  much faster (Nacson et al. 2019, AISTATS).
* Sign descent, steepest descent for ℓ∞: the ℓ∞ max-margin direction (Gunasekar et al. 2018,
  ICML); Adam too, while its ε is negligible against ``√v̂`` (Zhang, Zou & Cao 2024, NeurIPS; once
  the gradients fall below ε Adam turns into GD with step ``η/ε`` and drifts towards ℓ2, Wang et
  al. 2021, ICML).

``simulate(config)`` trains one vmapped sweep per optimizer (``config.train.seeds`` × that
optimizer's learning rates, ``config.optimizers``) with the engine, recording ``w(t)`` at
``config.num_records`` log-spaced steps through a hook, and compares it with both max-margin
directions, solved exactly (``dl_course.measures.implicit_bias.directions``); ``run`` writes figures,
summary and the training data (``x``, ``y``) so anyone can recompute the directions.
"""

from __future__ import annotations

import copy

import numpy as np

from dl_course import results
from dl_course.measures.implicit_bias import directions as bias
from dl_course.train import record_steps, sweep, trajectory_hook
from dl_course.train.build import load_data

DIRECTIONS_DISTINCT_BELOW = 0.95  # cos(ℓ2, ℓ∞) must be below this for the study to tell them apart
#: The direction each update rule is expected to converge to (module docstring).
EXPECTED = {"sgd": "l2", "normalized_gd": "l2", "sign_descent": "linf", "adam": "linf"}


def _options(spec) -> dict:
    options = spec.get("options", None)
    return {} if options is None else (options.to_dict() if hasattr(options, "to_dict") else dict(options))


def _optimizer_config(train, spec):
    c = copy.deepcopy(train)
    c.optimizer = spec.optimizer
    c.optimizer_options = _options(spec)
    return c


def simulate(config, data=None) -> dict:
    """For each dataset in ``config.datasets`` (or the single ``data`` given, named ``"data"``):
    solve both max-margin problems, then train one vmapped sweep per optimizer in
    ``config.optimizers`` over ``config.train.seeds ×`` its learning rates, recording ``w(t)``.

    Returns ``{dataset name: {"data", "solutions" (``implicit_bias.max_margin_directions``),
    "steps" (the record steps), "conventions" (the sweeps'), "runs": [one dict per run:
    optimizer (label), rule, options, learning_rate, seed, diverged, trajectory [T, d], measures
    (``implicit_bias.direction_measures``), train_loss and eval_steps (the engine's
    evaluations)]}}``.
    """
    t = config.train
    datasets = {"data": data} if data is not None else {}
    if data is None:
        for name, options in config.datasets.items():
            c = copy.deepcopy(t)
            c.dataset_options = options
            datasets[name] = load_data(c)
    steps = record_steps(int(t.steps), int(config.num_records))
    hook = trajectory_hook(steps)
    out = {}
    for name, d in datasets.items():
        if d.num_classes != 2:
            raise ValueError(f"max_margin needs a binary dataset, {name!r} has {d.num_classes} classes")
        solutions = bias.max_margin_directions(d.x_train, d.y_train)
        if solutions["cos_l2_linf"] >= DIRECTIONS_DISTINCT_BELOW:
            print(f"warning: on {name!r} the l2 and linf max-margin directions nearly coincide "
                  f"(cos {solutions['cos_l2_linf']:.3f}); the study cannot tell the two biases apart")
        runs, conventions = [], None
        for label, spec in config.optimizers.items():
            c = _optimizer_config(t, spec)
            res = sweep(c, t.seeds, list(spec.learning_rates), hooks={"trajectory": hook}, data=d)
            conventions = res.conventions
            traj = np.asarray(res.state.extras["trajectory"])
            for i, g in enumerate(res.grid):
                runs.append({"optimizer": label, "rule": spec.optimizer, "options": _options(spec),
                             "learning_rate": g["learning_rate"], "seed": g["seed"],
                             "diverged": bool(res.diverged[i]), "trajectory": traj[i],
                             "measures": bias.direction_measures(traj[i], d.x_train, d.y_train, solutions),
                             "train_loss": res.metrics["train_loss"][i], "eval_steps": res.steps})
        out[name] = {"data": d, "solutions": solutions, "steps": steps, "runs": runs, "conventions": conventions}
    return out


def summarize(sim: dict) -> tuple[list[dict], dict]:
    """Per-run rows (required keys ``optimizer``, ``learning_rate``, ``cos_to_l2_max_margin``,
    ``cos_to_linf_max_margin``, ``normalized_margin``, ``final_direction``) and the headline:
    whether every run ends nearer its expected direction (``EXPECTED``), the worst cosine to it,
    and per dataset the two directions' cosine, margins and per-optimizer results."""
    rows, headline = [], {"datasets": {}}
    for name, ds in sim.items():
        sol = ds["solutions"]
        by_opt = {}
        for r in ds["runs"]:
            m = r["measures"]
            row = {
                "dataset": name, "optimizer": r["optimizer"], "rule": r["rule"], "options": r["options"],
                "seed": r["seed"], "learning_rate": r["learning_rate"], "diverged": r["diverged"],
                "cos_to_l2_max_margin": float(m["cos_l2"][-1]), "cos_to_linf_max_margin": float(m["cos_linf"][-1]),
                "normalized_margin": float(m["margin_l2"][-1]), "normalized_margin_linf": float(m["margin_linf"][-1]),
                "l2_margin_over_max": float(m["margin_ratio_l2"][-1]),
                "linf_margin_over_max": float(m["margin_ratio_linf"][-1]),
                "final_norm": float(m["norm"][-1]), "final_train_loss": float(r["train_loss"][-1]),
                "last_step_w_changed": bias.last_change_step(ds["steps"], r["trajectory"]),
                "nearer_to": "l2" if m["cos_l2"][-1] > m["cos_linf"][-1] else "linf",
                "expected": EXPECTED.get(r["rule"]),
                "first_step_cos_l2_stays_above_0.999": bias.first_step_above(ds["steps"], m["cos_l2"], 0.999),
                "first_step_cos_linf_stays_above_0.999": bias.first_step_above(ds["steps"], m["cos_linf"], 0.999),
                "final_direction": (r["trajectory"][-1] / np.linalg.norm(r["trajectory"][-1])).tolist(),
            }
            if r["rule"] == "sgd":
                row["norm_growth_per_log_t_times_margin"] = bias.norm_growth_rate(ds["steps"], m["norm"],
                                                                                  sol["l2"].margin)
            rows.append(row)
            by_opt.setdefault(r["optimizer"], []).append(row)
        headline["datasets"][name] = {
            "n_train": ds["data"].n_train, "dim": int(np.prod(ds["data"].input_shape)),
            "cos_between_l2_and_linf_directions": sol["cos_l2_linf"], "l2_max_margin": sol["l2"].margin,
            "linf_max_margin": sol["linf"].margin, "linf_solution_unique": sol["linf_unique"],
            "linf_optimal_set_spread": sol["linf_spread"],
            "per_optimizer": {opt: {"best_cos_to_l2": max(x["cos_to_l2_max_margin"] for x in rs),
                                    "best_cos_to_linf": max(x["cos_to_linf_max_margin"] for x in rs),
                                    "nearer_to": sorted({x["nearer_to"] for x in rs})} for opt, rs in by_opt.items()},
        }
        gd = [x for x in rows if x["dataset"] == name and x["rule"] == "sgd"]
        if gd:
            headline["datasets"][name]["gd_norm_growth_per_log_t_times_margin"] = (
                gd[-1]["norm_growth_per_log_t_times_margin"])
    judged = [x for x in rows if x["expected"] is not None and not x["diverged"]]
    headline["all_runs_nearer_to_expected_direction"] = bool(judged) and all(x["nearer_to"] == x["expected"]
                                                                             for x in judged)
    headline["min_cos_to_expected_direction"] = min((x[f"cos_to_{x['expected']}_max_margin"] for x in judged),
                                                    default=None)
    by_label = {}
    for x in judged:
        by_label.setdefault(x["optimizer"], []).append(x)
    headline["cos_to_expected_direction_range"] = {
        opt: [min(x[f"cos_to_{x['expected']}_max_margin"] for x in rs),
              max(x[f"cos_to_{x['expected']}_max_margin"] for x in rs)]
        for opt, rs in by_label.items()}
    headline["earliest_step_1_minus_cos_to_expected_stays_below_1e-3"] = {
        opt: min((x[f"first_step_cos_{x['expected']}_stays_above_0.999"] for x in rs
                  if x[f"first_step_cos_{x['expected']}_stays_above_0.999"] is not None), default=None)
        for opt, rs in by_label.items()}
    headline["max_cos_between_l2_and_linf_directions"] = max(d["cos_between_l2_and_linf_directions"]
                                                             for d in headline["datasets"].values())
    gd_rates = [d["gd_norm_growth_per_log_t_times_margin"] for d in headline["datasets"].values()
                if "gd_norm_growth_per_log_t_times_margin" in d]
    if gd_rates:
        headline["gd_norm_growth_per_log_t_times_margin"] = gd_rates
    headline["expected_direction_by_rule"] = dict(EXPECTED)
    headline["paper"] = ("GD: w(t)/||w|| -> l2 max-margin direction, ||w|| ~ log(t)/gamma_l2, gap ~ 1/log t "
                         "(Soudry et al. 2018); sign descent / Adam -> linf max margin "
                         "(Gunasekar et al. 2018; Zhang et al. 2024)")
    return rows, headline


def _panel(name, ds):
    steps = ds["steps"].astype(float)
    counts = {}
    runs = []
    for r in ds["runs"]:
        k = counts.get(r["optimizer"], 0)
        counts[r["optimizer"]] = k + 1
        m = r["measures"]
        runs.append({"label": f"{r['optimizer']} η={r['learning_rate']:g}", "optimizer": r["optimizer"],
                     "style_index": k,
                     "one_minus_cos_l2": 1 - m["cos_l2"], "one_minus_cos_linf": 1 - m["cos_linf"], "norm": m["norm"],
                     "margin_ratio_l2": m["margin_ratio_l2"], "margin_ratio_linf": m["margin_ratio_linf"]})
    ref = None
    gd = [r for r in ds["runs"] if r["rule"] == "sgd"]
    if gd:  # slope reference 1/γ*₂ per unit of log t, anchored at the final norm of the last GD run
        norm = gd[-1]["measures"]["norm"]
        ref = (steps, norm[-1] + (np.log(steps) - np.log(steps[-1])) / ds["solutions"]["l2"].margin)
        ref = (ref[0][ref[1] > 0], ref[1][ref[1] > 0])
    d = ds["data"]
    label = (f"{name}: n={d.n_train}, d={int(np.prod(d.input_shape))}, "
             f"cos(w*ℓ2, w*ℓ∞)={ds['solutions']['cos_l2_linf']:.2f}")
    return {"name": label, "steps": steps, "runs": runs, "norm_reference": ref}


def run(config, run_dir: results.RunDir) -> dict:
    """Simulate, print the table, write ``max_margin.png``, summary.json, metrics.npz (with the
    training data as ``x``, ``y`` — first dataset — and ``x_<name>``, ``y_<name>`` for all)."""
    from dl_course.plotting import margins

    sim = simulate(config)
    rows, headline = summarize(sim)
    print(f"{'dataset':>20} {'optimizer':>14} {'lr':>8} {'cos l2':>8} {'cos linf':>8} {'margin/max l2':>13} "
          f"{'linf':>6} {'frozen at':>9}")
    for r in rows:
        print(f"{r['dataset']:>20} {r['optimizer']:>14} {r['learning_rate']:>8.3g} {r['cos_to_l2_max_margin']:>8.4f} "
              f"{r['cos_to_linf_max_margin']:>8.4f} {r['l2_margin_over_max']:>13.4f} {r['linf_margin_over_max']:>6.3f} "
              f"{r['last_step_w_changed']:>9d}")
    run_dir.figure("max_margin.png", margins.max_margin_figure(
        [_panel(n, ds) for n, ds in sim.items()],
        title="logistic loss, linear model without bias, full batch, w(0) = 0: direction, norm and margins vs t"))
    first = next(iter(sim))
    metrics = {"x": sim[first]["data"].x_train, "y": sim[first]["data"].y_train, "record_steps": sim[first]["steps"]}
    for name, ds in sim.items():
        sol = ds["solutions"]
        metrics.update({
            f"x_{name}": ds["data"].x_train, f"y_{name}": ds["data"].y_train,
            f"l2_max_margin_direction_{name}": sol["l2"].direction,
            f"linf_max_margin_direction_{name}": sol["linf"].direction,
            f"trajectories_{name}": np.stack([r["trajectory"] for r in ds["runs"]]).astype(np.float32),
            f"cos_l2_{name}": np.stack([r["measures"]["cos_l2"] for r in ds["runs"]]),
            f"cos_linf_{name}": np.stack([r["measures"]["cos_linf"] for r in ds["runs"]]),
            f"norm_{name}": np.stack([r["measures"]["norm"] for r in ds["runs"]]),
            f"learning_rate_{name}": np.asarray([r["learning_rate"] for r in ds["runs"]]),
            f"optimizer_{name}": np.asarray([r["optimizer"] for r in ds["runs"]]),
        })
    conventions = dict(sim[first]["conventions"])
    conventions.update({
        "datasets": {n: ds["data"].info for n, ds in sim.items()},
        "model": ("linear, no bias, w(0) = 0 (init_scale 0)"
                  if float(config.train.model_options.get("init_scale", 1.0)) == 0
                  else f"linear, options {config.train.model_options.to_dict()}"),
        "labels": "y in {0,1}, signs s = 2y - 1; logistic loss log(1 + exp(-s w.x)), mean over examples",
        "max_margin_directions": "l2: hard-margin SVM without bias by Lawson-Hanson least-distance programming (NNLS), "
                                 "exact; linf: LP max gamma s.t. s_i x_i.w >= gamma, |w_j| <= 1 (HiGHS), "
                                 "uniqueness checked by 2d LPs over the optimal face",
        "cosines": "Euclidean cosine between w(t) and each direction (directions normalized to unit l2 norm)",
        "normalized_margin": "min_i s_i x_i.w / ||w||_2 (normalized_margin_linf: / ||w||_inf)",
        "trajectory": f"w(t) recorded at {len(sim[first]['steps'])} log-spaced steps in [1, {int(config.train.steps)}]",
        "float32_underflow": "training runs in float32: once every example's logistic gradient underflows "
                             "(margin s_i x_i.w > ~88-103) the iterate stops moving; see last_step_w_changed",
        "optimizers": {k: v.to_dict() for k, v in config.optimizers.items()},
        "optimizer_defaults": "options not given take the rule's defaults: adam b1 0.9, b2 0.999, eps 1e-8 (once "
                              "|grad| << eps Adam acts as GD with step lr/eps: Wang et al. 2021); normalized_gd "
                              "eps 1e-6",
    })
    results.write_results(run_dir, config, "max_margin", conventions, rows, headline, metrics)
    return headline
