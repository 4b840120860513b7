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
the share of ``tr H`` carried by the top ``e`` eigenvalues; and the largest relative difference
between the top ``e`` eigenvalues of ``H`` and ``G``. The measurements are
``dl_course.measures.curvature.outliers``; the engine config is ``config.train``, the snapshots
(``snapshot_steps``, ``num_snapshots``) and measurement sizes (``measure.*``) are study keys.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import results
from dl_course.errors import ConfigError
from dl_course.measures.curvature import outliers
from dl_course.train import losses as losses_lib
from dl_course.train import record_steps, sweep, trajectory_hook
from dl_course.train.build import load_data
from dl_course.train.trajectory import trajectory_task

#: Losses whose output Hessian is positive semi-definite and smooth, so ``G`` is a curvature.
GGN_LOSSES = ("cross_entropy", "mse")


def snapshot_steps(config) -> np.ndarray:
    """``config.snapshot_steps`` (validated: within ``[0, train.steps]``, the final step included),
    or ``num_snapshots`` log-spaced steps with the initialization."""
    steps = int(config.train.steps)
    if config.get("snapshot_steps"):
        s = sorted({int(t) for t in config.snapshot_steps} | {steps})
        if s[0] < 0 or s[-1] > steps:
            raise ConfigError(f"snapshot_steps must lie in [0, steps={steps}], got {list(config.snapshot_steps)}")
        return np.asarray(s, np.int32)
    return record_steps(steps, int(config.num_snapshots) - 1, include_init=True)


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
    λmax, λmin, tr H and the measurement loss, the largest top-e difference between H and G."""
    mean = lambda key: float(np.mean([row[key] for row in rows])) if rows else None  # noqa: E731
    return {"step": rows[0]["step"] if rows else None,
            "num_outliers_hessian": [row["num_outliers_hessian"] for row in rows],
            **{k: mean(k) for k in ("gap_after_expected", "gap_after_expected_over_bulk", "lambda_max", "lambda_min",
                                    "hessian_trace", "measure_loss", "top_expected_trace_fraction")},
            "top_hessian_vs_ggn_rel_diff_max": max((row["top_hessian_vs_ggn_rel_diff"] for row in rows), default=None)}


def run(config, run_dir: results.RunDir) -> dict:
    """Train the seeds with a trajectory hook, measure the spectra of every snapshot, plot, write."""
    from dl_course.plotting import spectra as plots

    train = config.train
    data = load_data(train)
    if data.num_classes < 2:
        raise ConfigError(f"hessian_spectrum needs a classification dataset; {train.dataset} has no classes")
    snaps = snapshot_steps(config)
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
    num_runs, num_snaps, dim = traj.shape
    labels = np.repeat(res.train_labels(data, m), num_snaps, axis=0)  # [R*T, m], run-major
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(int(mc.seed)), i))(jnp.arange(num_runs * num_snaps))
    out = program(traj.reshape(num_runs * num_snaps, dim), labels, keys, np.asarray(data.x_train[:m]))
    out = {k: np.asarray(v).reshape((num_runs, num_snaps) + np.shape(v)[1:]) for k, v in jax.device_get(out).items()}

    c = data.num_classes
    e = outliers.expected_outliers(train.loss, c)
    rows = []
    for r, g in enumerate(res.grid):
        for t, step in enumerate(snaps):
            top_h, top_g, tr_h = out["hessian_top"][r, t], out["ggn_top"][r, t], out["hessian_trace"][r, t]
            gap, gap_over_bulk = outliers.outlier_gap(top_h, e)
            rows.append({"seed": g["seed"], "learning_rate": g["learning_rate"], "diverged": bool(res.diverged[r]),
                         "step": int(step), "measure_loss": float(out["measure_loss"][r, t]),
                         "measure_accuracy": float(out["measure_accuracy"][r, t]),
                         "lambda_max": float(top_h[0]),
                         "lambda_max_rel_residual": float(out["hessian_top_residual"][r, t, 0] / abs(top_h[0])),
                         "lambda_min": float(out["hessian_min"][r, t]),
                         "hessian_trace": float(tr_h), "hessian_trace_stderr": float(out["hessian_trace_stderr"][r, t]),
                         "ggn_trace": float(out["ggn_trace"][r, t]),
                         "num_outliers_hessian": outliers.count_outliers(top_h),
                         "num_outliers_ggn": outliers.count_outliers(top_g),
                         "expected_outliers": e, "gap_after_expected": gap,
                         "gap_after_expected_over_bulk": gap_over_bulk,
                         "top_expected_trace_fraction": float(np.sum(top_h[:e]) / tr_h),
                         "top_hessian_vs_ggn_rel_diff": float(np.max(np.abs(top_h[:e] - top_g[:e])
                                                                     / np.abs(top_h[:e]))),
                         "top_eigenvalues": top_h.tolist(), "ggn_top_eigenvalues": top_g.tolist()})
            if t == num_snaps - 1:
                rows[-1].update({"final_train_accuracy": float(res.metrics["train_accuracy"][r, -1]),
                                 "final_test_accuracy": float(res.metrics["test_accuracy"][r, -1])})

    final = [row for row in rows if row["step"] == int(snaps[-1]) and not row["diverged"]]
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
        "by_snapshot": [_snapshot_headline([row for row in rows
                                            if row["step"] == int(step) and not row["diverged"]])
                        for step in snaps],
        "by_step": {int(t): {k: float(np.mean([row[k] for row in rows
                                               if row["step"] == int(t) and not row["diverged"]]))
                             for k in ("measure_loss", "lambda_max", "lambda_min", "hessian_trace",
                                       "num_outliers_hessian",
                                       "gap_after_expected", "gap_after_expected_over_bulk",
                                       "top_expected_trace_fraction")}
                    for t in snaps},
    }
    print(f"{'step':>6} {'seed':>4} {'loss':>8} {'λmax':>9} {'λmin':>9} {'tr H':>9} {'#out H':>6} {'#out G':>6} "
          f"{'top/tr':>7} {'gap':>6}")
    for row in rows:
        print(f"{row['step']:>6} {row['seed']:>4} {row['measure_loss']:>8.4f} {row['lambda_max']:>9.4g} "
              f"{row['lambda_min']:>9.3g} {row['hessian_trace']:>9.4g} {row['num_outliers_hessian']:>6} "
              f"{row['num_outliers_ggn']:>6} {row['top_expected_trace_fraction']:>7.3f} "
              f"{row['gap_after_expected']:>6.3f}")

    run_dir.figure("spectrum.png", plots.plot_spectrum_study(
        snaps, out["hessian_density_grid"][0], out["hessian_density"][0], out["ggn_density_grid"][0, -1],
        out["ggn_density"][0, -1], out["hessian_top"][0], out["ggn_top"][0, -1], e,
        title=f"{train.model} on {train.dataset} ({dim} parameters, seed {res.grid[0]['seed']}), "
              f"{train.loss} on {m} training examples"))
    conventions = {
        **res.conventions,
        "measures_mode": "eval (no dropout; no batch norm in the default model)",
        "measures_examples": f"first {m} training examples, each run's own training labels",
        "measures_loss": f"mean {train.loss} over the measurement examples",
        "hessian_top": f"top {mc.top_k} eigenpairs of H and of G, Lanczos with full reorthogonalization, "
                       f"{mc.lanczos_iters} matrix-vector products; Ritz residuals recorded",
        "ggn": "G = J^T H_z J, J the Jacobian of the logits, H_z the Hessian of the loss in the logits",
        "trace": f"Hutchinson, {mc.trace_samples} Rademacher probes; standard error recorded",
        "density": f"SLQ, {mc.slq_probes} Rademacher probes x {mc.slq_iters} Lanczos steps, Gaussian smoothing "
                   f"sigma = 1% of the Ritz-value range, {mc.density_points}-point grid, integral 1",
        "num_outliers": "argmax_i lambda_i / lambda_(i+1) over the positive top eigenvalues (1-based)",
        "gap_after_expected": (f"lambda_e / lambda_(e+1) with e = {e} expected outliers (C - 1 for softmax "
                               "cross-entropy, C for mse); _over_bulk: divided by the median of lambda_i / "
                               "lambda_(i+1), i > e"),
        "snapshot_steps": snaps.tolist(), "measures_dtype": train.dtype,
    }
    metrics = {"snapshot_steps": snaps, "steps": res.steps, "seed": np.array([g["seed"] for g in res.grid]),
               "train_loss": res.metrics["train_loss"], "test_accuracy": res.metrics["test_accuracy"], **out}
    results.write_results(run_dir, config, "hessian_spectrum", conventions, rows, headline, metrics)
    return headline
