"""The Hessian spectrum of a trained classifier: a bulk near zero and about C outliers.

Sagun, Evci, Güney, Dauphin & Bottou (2017), "Empirical analysis of the Hessian of
over-parametrized neural networks": the spectrum of the training-loss Hessian is a bulk
concentrated near zero plus a few outliers, and the number of outliers follows the number of
classes C. Papyan (2019, ICML), "Measurements of three-level hierarchical structure in the
outliers in the spectrum of deepnet Hessians", and Papyan (2020, JMLR): the outliers belong to the
Gauss–Newton part ``G = Jᵀ H_z J`` of ``H = G + E`` and come from the class means of the logit
gradients. Ghorbani, Krishnan & Xiao (2019) for the SLQ density estimate.

Protocol: a seeds grid trained by the engine with a trajectory hook recording the parameters at
``snapshot_steps`` (initialization included); at every (run, snapshot), in one
``jax.jit(jax.vmap(...))`` program over all of them, on the first ``measure.examples`` training
examples in eval mode:

* the top-``k`` eigenpairs of ``H`` and of ``G`` (Lanczos with full reorthogonalization) with
  their Ritz residuals, and the bottom eigenvalue of ``H``;
* Hutchinson traces of ``H`` and ``G`` with standard errors;
* SLQ spectral densities of ``H`` and ``G`` (Rademacher probes, Gaussian smoothing).

Headline quantities, per snapshot: the number of outliers, i.e. the position of the largest ratio
gap ``λ_i / λ_{i+1}`` among the top ``k`` eigenvalues; the gap ``λ_e / λ_{e+1}`` after the ``e``
outliers the class structure predicts, also relative to the typical gap at the top of the bulk;
the share of ``tr H`` carried by the top ``e`` eigenvalues; the largest relative difference
between the top ``e`` eigenvalues of ``H`` and ``G``; and the split ``H = G + E`` as the trace
fraction ``tr G / tr H``. The measurements are ``dl_course.measures.curvature.outliers``; the engine config
is ``config.train``, the snapshots (``snapshot_steps``, ``num_snapshots``) and measurement sizes
(``measure.*``) are study keys.

Near-zero loss. Papyan's outliers are measured on nets trained to (near) zero training loss. With
``train.target_train_loss > 0`` every run is stopped by the engine's exact target stop
(``dl_course.train.exact_stop``: final train loss in ``[0.98, 1] × target``) and its stopped
parameters are one more snapshot, the last (``at_target`` rows; a fixed snapshot step at or after
a run's stop was never recorded and is left out). The headline's ``at_target`` summarises those
snapshots over the seeds, each quantity with a 95% t interval over seeds
(``dl_course.measures.statistics.intervals.mean_ci``): the outlier counts, the gap ``λ_e / λ_{e+1}`` (and over
the bulk spacing), ``tr G / tr H`` and the top-``e`` difference between ``H`` and ``G``; its
``verdict`` says whether a separated group of ``e`` outliers is there: every seed counts ``e`` and
the CI of the gap over the bulk spacing lies above 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from dl_course import results
from dl_course.errors import ConfigError
from dl_course.measures.curvature import outliers
from dl_course.measures.statistics import intervals
from dl_course.train import losses as losses_lib
from dl_course.train import record_steps, sweep, trajectory_hook
from dl_course.train.build import load_data
from dl_course.train.trajectory import trajectory_task

#: Losses whose output Hessian is positive semi-definite and smooth, so ``G`` is a curvature.
GGN_LOSSES = ("cross_entropy", "mse")


def snapshot_steps(config) -> np.ndarray:
    """``config.snapshot_steps`` (validated: within ``[0, train.steps]``; the final step added unless
    the runs stop at a target loss, whose stopped parameters are a snapshot of their own), or
    ``num_snapshots`` log-spaced steps with the initialization."""
    steps = int(config.train.steps)
    if config.get("snapshot_steps"):
        final = set() if _stops_at_target(config.train) else {steps}
        s = sorted({int(t) for t in config.snapshot_steps} | final)
        if s[0] < 0 or s[-1] > steps:
            raise ConfigError(f"snapshot_steps must lie in [0, steps={steps}], got {list(config.snapshot_steps)}")
        return np.asarray(s, np.int32)
    return record_steps(steps, int(config.num_snapshots) - 1, include_init=True)


def _stops_at_target(train) -> bool:
    return float(train.get("target_train_loss", 0.0)) > 0


def measure_program(train, data, **sizes):
    """``f(flat_params[N, d], labels[N, m], keys[N], x[m, ...]) -> dict of [N, ...]``: the
    spectra of ``H`` and ``G`` (``outliers.hessian_and_ggn_spectra`` with ``sizes``) at ``N``
    parameter vectors (runs × snapshots) of the engine config ``train``, one jitted vmap."""
    if train.loss not in GGN_LOSSES:
        raise ConfigError(f"hessian_spectrum needs a loss with a PSD output Hessian; got {train.loss!r}, "
                          f"valid: {', '.join(GGN_LOSSES)}")
    task, unravel = trajectory_task(train, data, "hessian_spectrum")
    per_example = losses_lib.get(train.loss)
    eval_key = jax.random.PRNGKey(0)  # unused in eval mode (no dropout); the engine's convention

    def one(flat, y, key, x):
        params = unravel(flat)
        batch = {"x": x, "y": y}

        def loss_fn(p):
            return task.loss(p, {}, batch, eval_key, False)[0]

        def logits_fn(p):
            return task.apply(p, {}, x)

        out = outliers.hessian_and_ggn_spectra(
            loss_fn, logits_fn, lambda z: jnp.mean(per_example(z, y, data.num_classes)), params, key, **sizes)
        loss, (_, metrics) = task.loss(params, {}, batch, eval_key, False)
        return {**out, "measure_loss": loss, "measure_accuracy": metrics["accuracy"]}

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None)))


def _snapshot_headline(rows: list[dict]) -> dict:
    """One snapshot's headline: its step, per-seed outlier counts, means over seeds of the gap,
    λmax, λmin, tr H, tr G / tr H and the measurement loss, the largest top-e difference between H and G."""
    mean = lambda key: float(np.mean([row[key] for row in rows])) if rows else None  # noqa: E731
    return {"step": rows[0]["step"] if rows else None,
            "num_outliers_hessian": [row["num_outliers_hessian"] for row in rows],
            **{k: mean(k) for k in ("gap_after_expected", "gap_after_expected_over_bulk", "lambda_max", "lambda_min",
                                    "hessian_trace", "measure_loss", "top_expected_trace_fraction",
                                    "ggn_trace_fraction")},
            "top_hessian_vs_ggn_rel_diff_max": max((row["top_hessian_vs_ggn_rel_diff"] for row in rows), default=None)}


def _point_row(out: dict, r: int, t: int, e: int) -> dict:
    """The measured quantities of run ``r`` at snapshot ``t`` (``out``: ``[run, snapshot, ...]``)."""
    top_h, top_g, tr_h = out["hessian_top"][r, t], out["ggn_top"][r, t], out["hessian_trace"][r, t]
    gap, gap_over_bulk = outliers.outlier_gap(top_h, e)
    return {"measure_loss": float(out["measure_loss"][r, t]), "measure_accuracy": float(out["measure_accuracy"][r, t]),
            "lambda_max": float(top_h[0]),
            "lambda_max_rel_residual": float(out["hessian_top_residual"][r, t, 0] / abs(top_h[0])),
            "lambda_min": float(out["hessian_min"][r, t]),
            "hessian_trace": float(tr_h), "hessian_trace_stderr": float(out["hessian_trace_stderr"][r, t]),
            "ggn_trace": float(out["ggn_trace"][r, t]), "ggn_trace_stderr": float(out["ggn_trace_stderr"][r, t]),
            "ggn_trace_fraction": float(out["ggn_trace"][r, t] / tr_h),
            "num_outliers_hessian": outliers.count_outliers(top_h),
            "num_outliers_ggn": outliers.count_outliers(top_g),
            "expected_outliers": e, "gap_after_expected": gap, "gap_after_expected_over_bulk": gap_over_bulk,
            "top_expected_trace_fraction": float(np.sum(top_h[:e]) / tr_h),
            "top_hessian_vs_ggn_rel_diff": float(np.max(np.abs(top_h[:e] - top_g[:e]) / np.abs(top_h[:e]))),
            "top_eigenvalues": top_h.tolist(), "ggn_top_eigenvalues": top_g.tolist()}


def at_target_headline(rows: list[dict], e: int, target: float) -> dict:
    """The snapshots at the target loss over the seeds that reached it (``rows`` with
    ``at_target``): outlier counts per seed, and for the count, the gap ``λ_e / λ_{e+1}``, that gap
    over the bulk spacing, ``tr G / tr H``, the top-``e`` relative difference of ``H`` and ``G``,
    λmax, λmin and ``tr H`` the mean over seeds with its 95% t interval (``key`` and ``key_ci``).
    ``outliers_separated``: every seed counts ``e`` outliers and the gap-over-bulk CI lies above 1;
    ``verdict`` says it in words."""
    done = [row for row in rows if row["at_target"] and row["converged"] and not row["diverged"]]
    head = {"target_train_loss": target, "num_runs": len(done), "expected_outliers": e,
            "steps_to_target": [row["step"] for row in done],
            "final_train_loss": [row["final_train_loss"] for row in done],
            "num_outliers_hessian": [row["num_outliers_hessian"] for row in done],
            "num_outliers_ggn": [row["num_outliers_ggn"] for row in done]}
    if len(done) < 2:
        return {**head, "outliers_separated": None,
                "verdict": f"{len(done)} run(s) reached train loss {target:g}: too few for an interval"}
    for key, name in (("num_outliers_hessian", "num_outliers"), ("gap_after_expected", "gap"),
                      ("gap_after_expected_over_bulk", "gap_over_bulk"), ("ggn_trace_fraction", "ggn_trace_fraction"),
                      ("top_hessian_vs_ggn_rel_diff", "top_hessian_vs_ggn_rel_diff"), ("lambda_max", "lambda_max"),
                      ("lambda_min", "lambda_min"), ("hessian_trace", "hessian_trace"),
                      ("final_train_accuracy", "train_accuracy"), ("final_test_accuracy", "test_accuracy")):
        ci = intervals.mean_ci([row[key] for row in done])
        head[name], head[f"{name}_ci"] = ci["estimate"], ci["ci"]
    counts_right = sum(c == e for c in head["num_outliers_hessian"])
    separated = counts_right == len(done) and head["gap_over_bulk_ci"][0] > 1
    if separated:
        verdict = (f"a separated group of {e} outliers in every seed: the gap after the {e}th eigenvalue stands "
                   f"above the bulk spacing (CI above 1)")
    else:
        reasons = []
        if counts_right < len(done):
            reasons.append(f"{counts_right} of {len(done)} seeds count {e} outliers")
        if head["gap_over_bulk_ci"][0] <= 1:
            reasons.append(f"the gap after the {e}th eigenvalue is not resolved above the bulk spacing "
                           f"(its CI reaches {head['gap_over_bulk_ci'][0]:.2f} <= 1)")
        verdict = f"no separated group of {e} outliers: " + "; ".join(reasons)
    return {**head, "outliers_separated": bool(separated), "verdict": verdict}


def run(config, run_dir: results.RunDir) -> dict:
    """Train the seeds with a trajectory hook (and the target stop, if set), measure the spectra of
    every snapshot, plot, write."""
    from dl_course.plotting import spectra as plots

    train = config.train
    data = load_data(train)
    if data.num_classes < 2:
        raise ConfigError(f"hessian_spectrum needs a classification dataset; {train.dataset} has no classes")
    snaps = snapshot_steps(config)
    at_target = _stops_at_target(train)
    mc = config.measure
    m = min(int(mc.examples), data.n_train)
    if int(mc.top_k) < data.num_classes + 2 or int(mc.lanczos_iters) < int(mc.top_k):
        raise ConfigError(f"need measure.top_k >= num_classes + 2 = {data.num_classes + 2} (to see the gap after "
                          f"the outliers) and measure.lanczos_iters >= top_k; got top_k={mc.top_k}, "
                          f"lanczos_iters={mc.lanczos_iters}")
    program = measure_program(train, data, top_k=int(mc.top_k), lanczos_iters=int(mc.lanczos_iters),
                              trace_samples=int(mc.trace_samples), slq_probes=int(mc.slq_probes),
                              slq_iters=int(mc.slq_iters), density_points=int(mc.density_points))
    res = sweep(train, data=data, hooks={"trajectory": trajectory_hook(snaps)}, progress=True)
    traj = np.asarray(res.state.extras["trajectory"])  # [R, T, d]
    if at_target:  # the stopped parameters: one more snapshot
        stopped = np.asarray(jax.vmap(lambda p: ravel_pytree(p)[0])(res.params))
        traj = np.concatenate([traj, stopped[:, None]], axis=1)
    num_runs, num_snaps, dim = traj.shape
    labels = np.repeat(res.train_labels(data, m), num_snaps, axis=0)  # [R*T, m], run-major
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(int(mc.seed)), i))(jnp.arange(num_runs * num_snaps))
    out = program(traj.reshape(num_runs * num_snaps, dim), labels, keys, np.asarray(data.x_train[:m]))
    out = {k: np.asarray(v).reshape((num_runs, num_snaps) + np.shape(v)[1:]) for k, v in jax.device_get(out).items()}

    c = data.num_classes
    e = outliers.expected_outliers(train.loss, c)
    stop = np.where(res.converged, res.steps_to_target, int(train.steps)) if at_target else None
    rows = []
    for r, g in enumerate(res.grid):
        for t in range(num_snaps):
            is_target = at_target and t == num_snaps - 1
            step = int(stop[r]) if is_target else int(snaps[t])
            if at_target and not is_target and step >= stop[r]:
                continue  # the run was stopped before this step: never recorded
            rows.append({"seed": g["seed"], "learning_rate": g["learning_rate"], "diverged": bool(res.diverged[r]),
                         "step": step, "snapshot": t, "at_target": is_target, **_point_row(out, r, t, e)})
            if t == num_snaps - 1:
                rows[-1].update({"final_train_loss": float(res.metrics["train_loss"][r, -1]),
                                 "final_train_accuracy": float(res.metrics["train_accuracy"][r, -1]),
                                 "final_test_accuracy": float(res.metrics["test_accuracy"][r, -1])})
            if is_target:
                rows[-1].update({"converged": bool(res.converged[r]), "step_fraction": float(res.step_fraction[r])})

    final = [row for row in rows if row["snapshot"] == num_snaps - 1 and not row["diverged"]]
    if not final:
        raise RuntimeError("every run diverged; lower the learning rate")
    mean = lambda key: float(np.mean([row[key] for row in final]))  # noqa: E731
    headline = {
        "num_classes": c, "num_params": int(dim), "measure_examples": m, "snapshot_steps": snaps.tolist(),
        "num_outliers_hessian_final": [row["num_outliers_hessian"] for row in final],
        "num_outliers_ggn_final": [row["num_outliers_ggn"] for row in final],
        "expected_outliers": e,
        "top_hessian_vs_ggn_rel_diff_max": float(max(row["top_hessian_vs_ggn_rel_diff"] for row in rows)),
        "lambda_max_final": mean("lambda_max"), "lambda_min_final": mean("lambda_min"),
        "hessian_trace_final": mean("hessian_trace"),
        "max_lambda_max_rel_residual": float(max(row["lambda_max_rel_residual"] for row in rows)),
        "final_train_accuracy": mean("final_train_accuracy"), "final_test_accuracy": mean("final_test_accuracy"),
        "top_hessian_vs_ggn_rel_diff_max_after_init": float(max(
            (row["top_hessian_vs_ggn_rel_diff"] for row in rows if row["step"] > 0), default=float("nan"))),
        "by_snapshot": [_snapshot_headline([row for row in rows if row["snapshot"] == t and not row["diverged"]])
                        for t in range(num_snaps)],
        "by_step": {int(s): {k: float(np.mean([row[k] for row in rows
                                               if row["step"] == int(s) and not row["at_target"]
                                               and not row["diverged"]]))
                             for k in ("measure_loss", "lambda_max", "lambda_min", "hessian_trace",
                                       "num_outliers_hessian",
                                       "gap_after_expected", "gap_after_expected_over_bulk",
                                       "top_expected_trace_fraction")}
                    for s in snaps if any(row["step"] == int(s) and not row["at_target"] for row in rows)},
    }
    if at_target:
        headline["at_target"] = at_target_headline(rows, e, float(train.target_train_loss))
    print(f"{'step':>6} {'seed':>4} {'loss':>8} {'λmax':>9} {'λmin':>9} {'tr H':>9} {'trG/trH':>7} {'#out H':>6} "
          f"{'#out G':>6} {'top/tr':>7} {'gap':>6}")
    for row in rows:
        print(f"{row['step']:>6} {row['seed']:>4} {row['measure_loss']:>8.4f} {row['lambda_max']:>9.4g} "
              f"{row['lambda_min']:>9.3g} {row['hessian_trace']:>9.4g} {row['ggn_trace_fraction']:>7.3f} "
              f"{row['num_outliers_hessian']:>6} {row['num_outliers_ggn']:>6} "
              f"{row['top_expected_trace_fraction']:>7.3f} {row['gap_after_expected']:>6.3f}")
    if at_target:
        print("at the target loss:", headline["at_target"]["verdict"])

    plot_steps = [*snaps.tolist(), int(stop[0])] if at_target else snaps
    last = (f"; last snapshot: stopped at train loss {float(train.target_train_loss):g}" if at_target else "")
    run_dir.figure("spectrum.png", plots.plot_spectrum_study(
        plot_steps, out["hessian_density_grid"][0], out["hessian_density"][0], out["ggn_density_grid"][0, -1],
        out["ggn_density"][0, -1], out["hessian_top"][0], out["ggn_top"][0, -1], e,
        title=f"{train.model} on {train.dataset} ({dim} parameters, seed {res.grid[0]['seed']}), "
              f"{train.loss} on {m} training examples{last}"))
    conventions = {
        **res.conventions,
        "measures_mode": "eval (no dropout; no batch norm in the default model)",
        "measures_examples": f"first {m} training examples, each run's own training labels",
        "measures_loss": f"mean {train.loss} over the measurement examples",
        "hessian_top": f"top {mc.top_k} eigenpairs of H and of G, Lanczos with full reorthogonalization, "
                       f"{mc.lanczos_iters} matrix-vector products; Ritz residuals recorded",
        "ggn": "G = J^T H_z J, J the Jacobian of the logits, H_z the Hessian of the loss in the logits; "
               "E = H - G; ggn_trace_fraction = tr G / tr H (two independent Hutchinson estimates)",
        "trace": f"Hutchinson, {mc.trace_samples} Rademacher probes; standard error recorded",
        "density": f"SLQ, {mc.slq_probes} Rademacher probes x {mc.slq_iters} Lanczos steps, Gaussian smoothing "
                   f"sigma = 1% of the Ritz-value range, {mc.density_points}-point grid, integral 1",
        "num_outliers": "argmax_i lambda_i / lambda_(i+1) over the positive top eigenvalues (1-based)",
        "gap_after_expected": (f"lambda_e / lambda_(e+1) with e = {e} expected outliers (C - 1 for softmax "
                               "cross-entropy, C for mse); _over_bulk: divided by the median of lambda_i / "
                               "lambda_(i+1), i > e"),
        "snapshot_steps": snaps.tolist(), "measures_dtype": train.dtype,
        "at_target": (f"last snapshot: each run's parameters at the engine's exact stop at train loss "
                      f"{float(train.target_train_loss):g} (final loss in [0.98, 1] x target); CIs: 95% Student t "
                      "over seeds (dl_course.measures.statistics.intervals.mean_ci)" if at_target else "off"),
    }
    metrics = {"snapshot_steps": snaps, "steps": res.steps, "seed": np.array([g["seed"] for g in res.grid]),
               "train_loss": res.metrics["train_loss"], "test_accuracy": res.metrics["test_accuracy"], **out}
    if at_target:
        metrics["steps_to_target"] = np.asarray(res.steps_to_target)
    results.write_results(run_dir, config, "hessian_spectrum", conventions, rows, headline, metrics)
    return headline
