"""Edge of stability (Cohen, Kaur, Li, Kolter & Talwalkar 2021, ICLR; Cohen et al. 2022 for Adam).

Gradient descent with step ``η`` on a quadratic with curvature ``λ`` is stable iff ``λ < 2/η``.
On neural networks trained by full-batch GD, Cohen et al. observe that the sharpness
``λmax(∇²L)`` first rises (*progressive sharpening*) until it reaches ``2/η``, then hovers just
above ``2/η`` (the *edge of stability*) while the loss keeps decreasing over long time scales,
non-monotonically. For Adam the same holds for the preconditioned sharpness
``λmax(P⁻¹∇²L)`` against the threshold ``(2 + 2β1)/((1 − β1)η)`` (Cohen et al. 2022, "Adaptive
Gradient Methods at the Edge of Stability").

``simulate(config)`` trains every learning rate of the engine config ``config.train`` in ONE
vmapped sweep (``dl_course.train.sweep``) with ``dl_course.measures.sharpness_tracker`` as a
hook: at every evaluation point, Lanczos (``config.lanczos_iters`` iterations, a study key) on
the full training loss warm-started from the previous top eigenvector. ``run(config, run_dir)``
adds the figure and summary. Helpers taking ``train`` take the engine config ``config.train``.
"""

from __future__ import annotations

import numpy as np

from dl_course import results
from dl_course.measures import adam_stability_threshold, gd_stability_threshold, sharpness_tracker
from dl_course.train import sweep

ADAPTIVE = ("adam",)


def _hparam(train, name, default):
    return float(train.optimizer_options.get(name, default))


def tracked(train) -> tuple[str, str]:
    """``(metric name, threshold label)`` of the sharpness that matters for ``train.optimizer``:
    λmax against 2/η for GD (``sgd``), Adam's preconditioned sharpness against
    ``(2 + 2β1)/((1 − β1)η)`` (38/η for β1 = 0.9)."""
    if train.optimizer in ADAPTIVE:
        b1 = _hparam(train, "b1", 0.9)
        return "preconditioned_sharpness", f"{(2 + 2 * b1) / (1 - b1):.4g}/η"
    if train.optimizer == "sgd":
        return "lambda_max", "2/η"
    raise ValueError(f"edge_of_stability supports optimizer 'sgd' (GD) or one of {list(ADAPTIVE)}, "
                     f"got {train.optimizer!r}")


def thresholds(train, learning_rates) -> np.ndarray:
    """The stability threshold of each learning rate: ``2/η`` for GD, Adam's for ``adam``."""
    lr = np.asarray(learning_rates, np.float64)
    if train.optimizer in ADAPTIVE:
        return np.asarray(adam_stability_threshold(lr, _hparam(train, "b1", 0.9)), np.float64)
    return np.asarray(gd_stability_threshold(lr), np.float64)


def tracker(train, lanczos_iters: int):
    """The sharpness hook for ``train.optimizer``: warm-started Lanczos with ``lanczos_iters``
    HVPs on λmax, plus Adam's preconditioned sharpness for ``adam``."""
    return sharpness_tracker(num_iters=int(lanczos_iters), preconditioned=train.optimizer in ADAPTIVE,
                             b1=_hparam(train, "b1", 0.9), b2=_hparam(train, "b2", 0.999),
                             eps=_hparam(train, "eps", 1e-8))


def simulate(config, data=None):
    """Train the grid ``config.train.seeds × config.train.learning_rates`` by full-batch GD (or
    Adam) in one vmapped sweep with the warm-started Lanczos sharpness tracker
    (``config.lanczos_iters``); returns the ``SweepResult`` (metrics ``lambda_max``, its
    ``_residual``, and for Adam ``preconditioned_sharpness``)."""
    t = config.train
    tracked(t)  # validates the optimizer before anything is compiled
    if int(t.batch_size) != 0:
        raise ValueError("edge_of_stability needs full-batch GD: set train.batch_size = 0")
    return sweep(t, hooks={"sharpness": tracker(t, config.lanczos_iters)}, data=data, progress=True)


def run_summaries(train, res) -> list[dict]:
    """Per-run rows: ``learning_rate``, ``threshold``, ``sharpness_final_over_threshold`` (median
    of the tracked sharpness over the last third of training / threshold), ``max_sharpness``,
    ``final_train_loss``, and diagnostics: ``step_edge_reached`` (first evaluation within 5% of
    the threshold after the initial transient) and the Lanczos relative residuals (the Ritz value
    is a lower bound of λmax, within ``residual`` of an eigenvalue)."""
    metric, _ = tracked(train)
    thr = thresholds(train, [g["learning_rate"] for g in res.grid])
    steps = res.steps
    last_third = steps >= steps[-1] * 2 / 3
    rows = []
    for i, g in enumerate(res.grid):
        s = res.metrics[metric][i]
        # The edge is reached after the initial transient (a catapult drop when the initial
        # sharpness exceeds the threshold): first evaluation at >= 95% of the threshold from the
        # minimum over the first half of training on.
        start = int(np.nanargmin(s[: max(1, len(s) // 2)]))
        reached = start + np.flatnonzero(s[start:] >= 0.95 * thr[i])
        residual = res.metrics[f"{metric}_residual"][i] if f"{metric}_residual" in res.metrics else res.metrics[
            "lambda_max_residual"][i]
        row = {
            "seed": g["seed"], "learning_rate": g["learning_rate"], "diverged": bool(res.diverged[i]),
            "threshold": float(thr[i]),
            "sharpness_final_over_threshold": float(np.nanmedian(s[last_third]) / thr[i]),
            "max_sharpness": float(np.nanmax(s)),
            "initial_sharpness": float(s[0]) if np.isfinite(s[0]) else float(s[1]),
            "final_train_loss": float(res.metrics["train_loss"][i, -1]),
            "min_train_loss": float(np.nanmin(res.metrics["train_loss"][i])),
            "step_edge_reached": int(steps[reached[0]]) if reached.size else None,
            "median_relative_lanczos_residual": float(np.nanmedian(np.abs(residual) / np.abs(s))),
            "max_relative_lanczos_residual": float(np.nanmax(np.abs(residual) / np.abs(s))),
        }
        if metric != "lambda_max":
            row["lambda_max_final"] = float(res.metrics["lambda_max"][i, -1])
        rows.append(row)
    return rows


def run(config, run_dir: results.RunDir) -> dict:
    """:func:`simulate`, then :func:`report`."""
    return report(config, simulate(config), run_dir)


def report(config, res, run_dir: results.RunDir) -> dict:
    """Table, figures (loss and sharpness per η with the threshold; all runs' ratio to the
    threshold), summary.json and metrics.npz of a :func:`simulate` result; returns the headline."""
    from dl_course.plotting import stability

    t = config.train
    metric, thr_label = tracked(t)
    rows = run_summaries(t, res)
    print(f"{'lr':>8} {'threshold':>9} {'median/thr':>10} {'max':>8} {'loss':>9}")
    for r in rows:
        print(f"{r['learning_rate']:>8.4g} {r['threshold']:>9.4g} {r['sharpness_final_over_threshold']:>10.3f} "
              f"{r['max_sharpness']:>8.4g} {r['final_train_loss']:>9.4g}")
    labels = [f"η = {g['learning_rate']:g}" + (f", seed {g['seed']}" if len(t.seeds) > 1 else "") for g in res.grid]
    thr = np.asarray([r["threshold"] for r in rows])
    name = "GD" if t.optimizer == "sgd" else t.optimizer
    options = ", ".join(f"{k}={v}" for k, v in t.model_options.items())
    title = (f"{name}, full batch: {t.model} ({options}) on "
             f"{res.conventions['train_metrics_examples']} {t.dataset} examples, loss {t.loss}")
    run_dir.figure("sharpness_and_loss.png", stability.edge_of_stability_figure(
        res.steps, res.metrics["train_loss"], res.metrics[metric], thr, labels,
        sharpness_label="λmax (Hessian)" if metric == "lambda_max" else "preconditioned sharpness",
        threshold_label=thr_label, title=title))
    run_dir.figure("sharpness_over_threshold.png", stability.sharpness_ratio_figure(
        res.steps, res.metrics[metric] / thr[:, None], labels, threshold_label=thr_label))
    ratios = np.asarray([r["sharpness_final_over_threshold"] for r in rows])
    ok = ~res.diverged
    headline = {
        "median_sharpness_final_over_threshold": float(np.median(ratios[ok])) if ok.any() else None,
        "min_sharpness_final_over_threshold": float(np.min(ratios[ok])) if ok.any() else None,
        "max_sharpness_final_over_threshold": float(np.max(ratios[ok])) if ok.any() else None,
        "sharpness_final_over_threshold_by_run": [float(r) for r in ratios],
        "learning_rates": [float(g["learning_rate"]) for g in res.grid],
        "paper_sharpness_final_over_threshold": (
            "≈ 1, hovering just above 2/η (Cohen et al. 2021, Fig. 1)" if metric == "lambda_max"
            else "≈ 1: preconditioned sharpness at (2+2β1)/((1−β1)η) (Cohen et al. 2022)"),
        "tracked": metric, "num_runs": len(rows), "num_diverged": int(res.diverged.sum()),
        "seconds": res.timing["total_s"], "first_chunk_incl_compile_s": res.timing["first_chunk_incl_compile_s"],
    }
    conventions = dict(res.conventions)
    conventions.update({
        "sharpness": (f"{metric}: top eigenvalue by {int(config.lanczos_iters)} Lanczos iterations (full "
                      "reorthogonalization) warm-started from the previous evaluation's eigenvector, on the "
                      "full-batch training loss in eval mode, every eval_every steps"),
        "threshold": thr_label,
        "sharpness_final_over_threshold": "median of the tracked sharpness over evaluation points in the last third "
                                          "of training, divided by the threshold",
        "mse_convention": "per-example 1/2 ||f(x) - onehot(y)||^2, mean over examples (Cohen et al.)",
        "variant": getattr(run_dir, "variant", None) or "default",
    })
    metrics = {"steps": res.steps, "learning_rate": np.asarray([g["learning_rate"] for g in res.grid]),
               "seed": np.asarray([g["seed"] for g in res.grid]), "threshold": thr, "diverged": res.diverged,
               **{k: v.astype(np.float32) for k, v in res.metrics.items()}}
    results.write_results(run_dir, config, "edge_of_stability", conventions, rows, headline, metrics)
    return headline
