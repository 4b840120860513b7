"""Does a flat minimum predict calibrated, OOD-aware predictions? Sharpness (the top Hessian
eigenvalue λmax and the trace, e.g. Keskar et al. 2017; Jiang et al. 2020, "Fantastic
generalization measures and where to find them") next to calibration (ECE, NLL; Guo et al. 2017)
and OOD detection (AUROC of the max-softmax score; Hendrycks & Gimpel 2017) across a seeds ×
learning-rates sweep — a question none of the reproduced papers answers.

Every run trains in ONE ``dl_course.train.sweep``. At the final parameters, vmapped over runs:

* λmax of the training loss (mean cross-entropy over ``measure_examples`` training examples, eval
  mode) by Lanczos (``dl_course.measures.hessian_eigenpairs``: ``top_eigenvalues`` with its Ritz
  residual), and its trace by Hutchinson (``hessian_trace``, with standard error);
* test accuracy, NLL (mean per example, nats), ECE (15 equal-width bins) of the single network;
* AUROC (OOD positive) of the max-softmax score on each OOD set of ``uncertainty.ood_benchmark``
  (held-out classes the networks never see; noise inputs).

Rank correlations over runs (Kendall's τ as in Jiang et al. 2020, and Spearman's ρ), between
each sharpness measure and each of ECE, NLL and AUROC, and the scatter figure. Correlations across
learning rates are uncontrolled: the learning rate moves sharpness, the final train loss and
calibration together.

The intervention (``intervention.axis`` set, e.g. SAM's ``rho``): the sweep gets one more grid axis
with two values, ``intervention.arms = [control, treated]`` (e.g. ρ = 0, plain SGD, against
ρ > 0), at one learning rate, every run stopped at one train loss by the engine's exact stop. Both
arms train every seed (the same initialization and minibatch order per seed), so an arm's effect on
λmax, ECE and NLL is the mean of the per-seed differences treated − control with its 95% t interval
(:func:`intervention_effects`; ``dl_course.measures.statistics.intervals.paired_difference_ci``): a causal
effect of the knob, where the correlations above only associate.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from dl_course import results
from dl_course.measures import hessian_eigenpairs, hessian_trace
from dl_course.measures.generalization.ranking_ci import spearman_with_ci
from dl_course.measures.statistics import intervals
from dl_course.plotting.calibration import sharpness_scatter_figure
from dl_course.plotting.scatter import rank_correlations
from dl_course.train import sweep
from dl_course.train.build import load_data, make_model
from dl_course.train.config import ConfigError
from dl_course.train.task import supervised_task
from dl_course.uncertainty import members as mem
from dl_course.uncertainty import ood as ood_lib
from dl_course.uncertainty.ood_benchmark import ood_benchmark

MEASURES = ("lambda_max", "hessian_trace")
OUTCOMES = ("ece", "nll")


@functools.partial(jax.jit, static_argnames=("task", "num_iters", "num_probes"))
def curvature(task, params, model_state, x, y, keys, num_iters, num_probes):
    """Per run (vmapped): ``λmax``, its relative Ritz residual ``‖Hv − λv‖ / |λ|``, and the
    Hutchinson trace with its standard error, of ``L(θ) = mean CE over (x, y)`` in eval mode."""
    def one(params, ms, key):
        loss_fn = lambda p: task.loss(p, ms, {"x": x, "y": y}, key, False)[0]
        k_eig, k_tr = jax.random.split(key)
        eig = hessian_eigenpairs(loss_fn, params, 1, key=k_eig, num_iters=num_iters)
        tr, se = hessian_trace(loss_fn, params, key=k_tr, num_samples=num_probes)
        lam = eig.eigenvalues[0]
        return {"lambda_max": lam, "lambda_max_rel_residual": eig.residuals[0] / jnp.abs(lam),
                "hessian_trace": tr, "hessian_trace_stderr": se}
    return jax.vmap(one)(params, model_state, keys)


def included(rows: list[dict]) -> list[dict]:
    """The runs the correlations use: not diverged and, with a target stop, converged (a run that
    never reached the target is reported in the rows, never mixed with the converged ones)."""
    return [r for r in rows if not r["diverged"] and r.get("converged", True)]


def correlations(rows: list[dict], outcomes) -> dict:
    """``measure -> outcome -> {kendall_tau, spearman_rho, num_runs}`` over the :func:`included` runs."""
    ok = included(rows)
    return {m: {o: rank_correlations([r[m] for r in ok], [r[o] for r in ok]) for o in outcomes} for m in MEASURES}


def within_lr_tau(rows: list[dict], outcomes) -> dict:
    """``measure -> outcome -> mean over learning rates of Kendall's τ among that learning rate's
    included runs`` (the seeds): the part of a correlation that is not a difference between
    learning rates (the granulated coefficient of Jiang et al. 2020, for one axis). NaN when no
    learning rate has two runs (ties: scipy's τ-b; a constant group gives NaN and is left out)."""
    ok = included(rows)
    groups = [[r for r in ok if r["learning_rate"] == lr] for lr in sorted({r["learning_rate"] for r in ok})]
    groups = [g for g in groups if len(g) > 1]

    def mean_tau(m, o):
        taus = [stats.kendalltau([r[m] for r in g], [r[o] for r in g]).statistic for g in groups]
        taus = [v for v in taus if np.isfinite(v)]
        # Rounded to 12 digits (+ 0.0 turns -0.0 into 0.0): a mean of +-1/3 etc. that is zero prints as 0.
        return float(np.round(np.mean(taus), 12)) + 0.0 if taus else float("nan")
    return {m: {o: mean_tau(m, o) for o in outcomes} for m in MEASURES}


ARMS = ("control", "treated")
EFFECTS = ("lambda_max", "hessian_trace", "ece", "nll", "accuracy", "final_train_loss")


def intervention_grid(config) -> dict:
    """``{axis: [control, treated]}`` for the sweep, or ``{}`` without an intervention; a bad
    setting raises ``ConfigError`` (before anything compiles)."""
    iv = config.get("intervention")
    if iv is None or not iv.get("axis"):
        return {}
    arms = [float(a) for a in iv.arms]
    if len(arms) != 2 or arms[0] == arms[1]:
        raise ConfigError(f"intervention.arms must be two different values [control, treated], got {list(iv.arms)}")
    if len(config.train.learning_rates) != 1:
        raise ConfigError("an intervention compares its arms at one learning rate; got train.learning_rates = "
                          f"{list(config.train.learning_rates)}")
    if float(config.train.get("target_train_loss", 0.0)) <= 0:
        raise ConfigError("an intervention compares its arms at one train loss: set train.target_train_loss > 0")
    return {str(iv.axis): arms}


def intervention_effects(rows: list[dict], axis: str, arms, keys=EFFECTS) -> dict:
    """Per ``key``: mean over seeds of ``treated − control`` (the two arms' runs of one seed, both
    converged and not diverged) with its 95% t interval (``intervals.paired_difference_ci``):
    ``{estimate, ci, n, method, verdict}``; and each arm's mean with its interval
    (``by_arm[arm][key]``). ``rows`` carry ``arm`` and ``seed``."""
    ok = {(r["arm"], r["seed"]): r for r in included(rows)}
    seeds = sorted(s for (a, s) in ok if a == ARMS[0] and (ARMS[1], s) in ok)
    out = {"axis": axis, "arms": {a: v for a, v in zip(ARMS, arms)}, "num_pairs": len(seeds),
           "pairing": "by seed (same initialization and minibatch order in both arms)"}
    if len(seeds) < 2:
        return {**out, "verdict": f"{len(seeds)} seed(s) with both arms converged: too few for an interval"}
    for k in keys:
        a = [ok[(ARMS[1], s)][k] for s in seeds]
        b = [ok[(ARMS[0], s)][k] for s in seeds]
        eff = intervals.paired_difference_ci(a, b)
        out[f"effect_on_{k}"] = {**eff, "verdict": intervals.verdict(eff)}
    out["by_arm"] = {arm: {k: intervals.mean_ci([ok[(arm, s)][k] for s in seeds]) for k in keys} for arm in ARMS}
    return out


LABELS = {"lambda_max": "λmax (train-loss Hessian)", "hessian_trace": "trace of the train-loss Hessian",
          "ece": "test ECE", "nll": "test NLL (nats)", "final_train_loss": "final train loss (the confound)",
          "auroc_held_out_classes": "MSP AUROC vs held_out_classes",
          "auroc_gaussian_noise": "MSP AUROC vs gaussian_noise"}


def run(config, run_dir: results.RunDir) -> dict:
    """Sweep, measure, print the table and correlations, write the figure, summary and metrics."""
    t = config.train
    data = load_data(t)
    in_data, sets = ood_benchmark(data, config.ood.held_out_classes, config.ood.noise, int(config.ood.seed))
    grid = intervention_grid(config)
    res = sweep(t, data=in_data, checkpoint_dir=run_dir.checkpoint_dir, resume=run_dir.resume, progress=True,
                **grid)
    model = make_model(t, in_data)
    task = supervised_task(model, t.loss, in_data.num_classes)
    n_meas = int(config.measure_examples) or in_data.n_train
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(int(config.measure_seed)), s))(
        jnp.asarray([g["seed"] for g in res.grid], jnp.uint32))
    curv = {k: np.asarray(v) for k, v in curvature(
        task, res.params, res.state.model_state, jnp.asarray(in_data.x_train[:n_meas]),
        jnp.asarray(in_data.y_train[:n_meas]), keys, int(config.lanczos_iters), int(config.trace_probes)).items()}
    x = np.concatenate([in_data.x_test] + list(sets.values()))
    logits = mem.member_logits(model, res.params, res.state.model_state, jnp.asarray(x))
    n_in = in_data.n_test
    test = {k: np.asarray(v) for k, v in mem.member_metrics(logits[:, :n_in], jnp.asarray(in_data.y_test)).items()}
    scores = np.asarray(mem.member_ood_scores(logits[:, None], ("msp",))["msp"])   # −max softmax per run
    rows, start = [], n_in
    bounds = {}
    for name, v in sets.items():
        bounds[name] = (start, start + len(v))
        start += len(v)
    target_stop = res.conventions.get("target_stop", "off") != "off"
    for i, g in enumerate(res.grid):
        row = {**g, "diverged": bool(res.diverged[i]), **{k: float(v[i]) for k, v in curv.items()},
               **{k: float(test[k][i]) for k in ("accuracy", "nll", "ece", "brier")},
               "final_train_loss": float(res.metrics["train_loss"][i, -1]),
               "final_train_accuracy": float(res.metrics["train_accuracy"][i, -1])}
        for name, (a, b) in bounds.items():
            row[f"auroc_{name}"] = ood_lib.auroc(scores[i, :n_in], scores[i, a:b])
        if target_stop:
            row["converged"], row["steps_to_target"] = bool(res.converged[i]), int(res.steps_to_target[i])
        for axis, arms in grid.items():
            row["arm"] = ARMS[arms.index(g[axis])]
        rows.append(row)
    outcomes = OUTCOMES + tuple(f"auroc_{name}" for name in sets) + ("accuracy", "final_train_loss")
    corr = correlations(rows, outcomes)
    within = within_lr_tau(rows, outcomes)
    print(f"{'lr':>7} {'seed':>4} {'lambda_max':>10} {'trace':>9} {'train_loss':>10} {'ece':>6} {'nll':>6} {'acc':>6} "
          + " ".join(f"{'auroc_' + n[:8]:>14}" for n in sets))
    for r in rows:
        print(f"{r['learning_rate']:>7.3g} {r['seed']:>4d} {r['lambda_max']:>10.4g} {r['hessian_trace']:>9.4g} "
              f"{r['final_train_loss']:>10.4g} "
              f"{r['ece']:>6.3f} {r['nll']:>6.3f} {r['accuracy']:>6.3f} "
              + " ".join(f"{r['auroc_' + n]:>14.3f}" for n in sets)
              + (f"  steps_to_target {r['steps_to_target']}" if target_stop else ""))
    for m, by_o in corr.items():
        print(f"Kendall tau ({m} vs): " + ", ".join(f"{o} {c['kendall_tau']:+.2f}" for o, c in by_o.items()))
        print("  within learning rates: " + ", ".join(f"{o} {v:+.2f}" for o, v in within[m].items()))
    title = (f"{t.model} on {in_data.name}, {t.optimizer}, batch {t.batch_size}: one point per run; "
             f"sharpness at the final parameters on {n_meas} training examples; OOD = positive class, MSP score")
    run_dir.figure("sharpness_vs_calibration.png", sharpness_scatter_figure(
        included(rows), MEASURES, OUTCOMES + (f"auroc_{next(iter(sets))}", "final_train_loss"),
        LABELS, title))
    ok_rows = included(rows)
    spearman_ci = {m: {o: spearman_with_ci([r[m] for r in ok_rows], [r[o] for r in ok_rows])
                       for o in ("ece", "nll", "final_train_loss")} for m in MEASURES}
    headline = {"rank_correlations": corr, "spearman_ci": spearman_ci, "within_lr_kendall_tau": within,
                "num_runs": len(rows),
                "num_diverged": int(res.diverged.sum()), "num_included": len(included(rows)),
                "max_lambda_max_rel_residual": float(np.nanmax(curv["lambda_max_rel_residual"])),
                "seconds": res.timing["total_s"]}
    lrs = sorted({g["learning_rate"] for g in res.grid})
    ok = included(rows)

    def by_lr(k):
        """Mean of ``k`` over each learning rate's included runs (None if it has none)."""
        return [float(np.mean([r[k] for r in ok if r["learning_rate"] == lr]))
                if any(r["learning_rate"] == lr for r in ok) else None for lr in lrs]

    headline.update({"learning_rates": lrs, "mean_lambda_max_by_lr": by_lr("lambda_max"),
                     "mean_ece_by_lr": by_lr("ece"), "mean_nll_by_lr": by_lr("nll"),
                     "mean_final_train_loss_by_lr": by_lr("final_train_loss")})
    if target_stop:
        conv = [r for r in rows if r["converged"]]
        headline.update({
            "target_train_loss": float(t.target_train_loss), "num_converged": len(conv),
            "mean_steps_to_target_by_lr": [float(np.mean([r["steps_to_target"] for r in conv
                                                          if r["learning_rate"] == lr]))
                                           if any(r["learning_rate"] == lr for r in conv) else None for lr in lrs]})
        if len(conv) < 3:
            print(f"only {len(conv)} of {len(rows)} runs reached train loss {t.target_train_loss:g} within "
                  f"{t.steps} steps: too few for rank correlations (raise train.steps or the target)")
    for axis, arms in grid.items():
        headline["intervention"] = intervention_effects(rows, axis, arms)
        iv = headline["intervention"]
        for k in ("lambda_max", "ece", "nll"):
            if f"effect_on_{k}" in iv:
                e = iv[f"effect_on_{k}"]
                print(f"intervention {axis} {arms[0]:g} -> {arms[1]:g}: effect on {k} {e['estimate']:+.4g} "
                      f"[{e['ci'][0]:+.4g}, {e['ci'][1]:+.4g}] ({e['verdict']}, {e['n']} seeds)")
    headline["final_train_loss_range"] = [float(min(r["final_train_loss"] for r in ok)),
                                          float(max(r["final_train_loss"] for r in ok))] if ok else None
    conventions = {**res.conventions, "hessian": f"of the mean cross-entropy over the first {n_meas} training "
                   "examples, eval mode, at the final parameters", "lambda_max": f"Lanczos, {config.lanczos_iters} "
                   "iterations, full reorthogonalization", "hessian_trace": f"Hutchinson, {config.trace_probes} "
                   "Rademacher probes (stderr reported)", **{k: mem.CONVENTIONS[k] for k in ("nll", "ece", "brier")},
                   "ood": f"AUROC of the max-softmax score, {ood_lib.CONVENTION}",
                   "rank_correlations": "Kendall tau and Spearman rho over the non-diverged runs (and, with a "
                                        "target stop, converged runs only)",
                   "within_lr_kendall_tau": "mean over learning rates of Kendall tau among that rate's runs",
                   "intervention": (f"grid axis {next(iter(grid))} = {next(iter(grid.values()))} (control, treated); "
                                    "effects: mean over seeds of treated - control, 95% Student t interval of the "
                                    "paired differences" if grid else "none: correlations across runs only")}
    results.write_results(run_dir, config, "sharpness_vs_calibration", conventions, rows, headline,
                          {"steps": res.steps, "seed": np.asarray([g["seed"] for g in res.grid]),
                           "learning_rate": np.asarray([g["learning_rate"] for g in res.grid]),
                           "diverged": res.diverged, "converged": res.converged,
                           "steps_to_target": res.steps_to_target, **curv, **test, **res.metrics})
    return headline
