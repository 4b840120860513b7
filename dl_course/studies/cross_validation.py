"""k-fold cross-validation to choose the L2 penalty of an MLP on a small MNIST-1D training set.

Protocol (Stone 1974; Hastie, Tibshirani & Friedman, "Elements of Statistical Learning", 7.10):
the ``n`` training examples are split once into ``k`` folds (``dl_course.data.kfold_indices``:
the validation folds partition the set exactly). For every candidate ``lambda`` (the engine's
``l2`` grid key: loss + (lambda/2)||theta||^2) and seed, a network is trained on k-1 folds and
its classification error measured on the held-out fold; the CV error of ``lambda`` is the mean
over folds (of the seed-averaged errors), its spread the std over folds. The chosen ``lambda``
minimises the CV error (also reported: the one-standard-error rule, the largest ``lambda`` whose
CV error is within one standard error of the minimum). Separately, every candidate is trained on
all ``n`` examples and evaluated on the untouched test set: the test curve the CV curve estimates.
Training time is a second hyperparameter read off the same runs: CV and test error at every
evaluation step of the unregularised candidate (early stopping).

Vmapping: every fold is one sweep vmapped over candidates x seeds; folds of equal size reuse the
compiled program (the engine takes one dataset per sweep, so the fold axis is a host loop).
"""

from __future__ import annotations

import numpy as np

from dl_course import data as data_lib
from dl_course import results
from dl_course.measures.statistics.selection import choose
from dl_course.train import sweep
from dl_course.train.build import load_data


def run(config, run_dir: results.RunDir) -> dict:
    """Train candidates x seeds on every fold and on the whole small set; CV vs test curves; write."""
    from dl_course.plotting import model_selection as plots

    data = load_data(config.train)
    data = data_lib.subsample_per_class(data, int(config.per_class), seed=int(config.subsample_seed))
    k = int(config.k)
    lams = [float(v) for v in config.l2_candidates]
    folds = data_lib.fold_datasets(data, k, int(config.fold_seed))
    val_err, rows, conventions = [], [], None
    for i, fd in enumerate(folds):
        res = sweep(config.train, data=fd, l2=lams, progress=True)
        conventions = conventions or dict(res.conventions)
        val_err.append(1.0 - res.metrics["test_accuracy"])  # [run, eval]
        for j, g in enumerate(res.grid):
            rows.append({"split": f"fold{i}", "fold": i, "seed": g["seed"], "learning_rate": g["learning_rate"],
                         "l2": g["l2"], "diverged": bool(res.diverged[j]), "val_error": float(val_err[-1][j, -1]),
                         "train_error": float(1.0 - res.metrics["train_accuracy"][j, -1])})
    grid = res.grid
    full = sweep(config.train, data=data, l2=lams, progress=True)
    test_err = 1.0 - full.metrics["test_accuracy"]
    for j, g in enumerate(full.grid):
        rows.append({"split": "full", "fold": -1, "seed": g["seed"], "learning_rate": g["learning_rate"], "l2": g["l2"],
                     "diverged": bool(full.diverged[j]), "test_error": float(test_err[j, -1]),
                     "train_error": float(1.0 - full.metrics["train_accuracy"][j, -1])})
    lam_of_run = np.array([g["l2"] for g in grid])
    val = np.stack(val_err)  # [fold, run, eval]
    # per fold and candidate: mean over seeds; then mean / std over folds
    per_fold = np.stack([val[:, lam_of_run == lam].mean(1) for lam in lams], 1)  # [fold, cand, eval]
    cv_mean, cv_std = per_fold.mean(0), per_fold.std(0)  # [cand, eval]
    test = np.stack([test_err[np.array([g["l2"] for g in full.grid]) == lam].mean(0) for lam in lams])  # [cand, eval]
    test_std = np.stack([test_err[np.array([g["l2"] for g in full.grid]) == lam].std(0) for lam in lams])
    pick = choose(lams, cv_mean[:, -1], cv_std[:, -1], k)
    # training time as the hyperparameter, for the unregularised candidate (lambda = lams[0])
    t_best = int(np.argmin(cv_mean[0]))
    candidates = [{"l2": lam, "cv_error_mean": float(cv_mean[c, -1]), "cv_error_std": float(cv_std[c, -1]),
                   "test_error": float(test[c, -1]), "test_error_std": float(test_std[c, -1])}
                  for c, lam in enumerate(lams)]
    headline = {"k": k, "n_train": data.n_train, "hyperparameter": "l2", "chosen": lams[pick["best"]],
                "chosen_test_error": float(test[pick["best"], -1]),
                "chosen_cv_error": float(cv_mean[pick["best"], -1]),
                "one_se_choice": lams[pick["one_se"]], "one_se_test_error": float(test[pick["one_se"], -1]),
                "oracle_l2": lams[int(np.argmin(test[:, -1]))], "oracle_test_error": float(test[:, -1].min()),
                "candidates": candidates,
                "early_stopping": {"l2": lams[0], "chosen_step": int(full.steps[t_best]),
                                   "cv_error": float(cv_mean[0, t_best]), "test_error": float(test[0, t_best]),
                                   "test_error_at_end": float(test[0, -1])}}
    print(f"{'l2':>8} {'cv error':>16} {'test error':>11}")
    for c in candidates:
        print(f"{c['l2']:>8.0e} {c['cv_error_mean']:>8.4f} ± {c['cv_error_std']:.4f} {c['test_error']:>11.4f}")
    print(f"chosen l2 = {headline['chosen']:g} (test error {headline['chosen_test_error']:.4f}); "
          f"oracle l2 = {headline['oracle_l2']:g} (test error {headline['oracle_test_error']:.4f})")
    run_dir.figure("cv_curve.png", plots.cv_curves(lams, cv_mean, cv_std, test, test_std, full.steps, pick["best"],
                                                   pick["one_se"], t_best, k, data.n_train))
    conventions.update({
        "data": f"{data.n_train} MNIST-1D training examples ({config.per_class} per class, subsample seed "
                f"{config.subsample_seed}); test set: the standard 1000 test examples",
        "folds": f"k={k} folds from kfold_indices(n, k, seed={config.fold_seed}); fold i trains on the other k-1",
        "error": "classification error 1 - accuracy (eval mode), at the final step unless stated",
        "cv_error": "mean over folds of the seed-averaged validation error; cv_error_std: std over folds",
        "l2": "explicit penalty (l2/2)||theta||^2 added to the mean loss (engine grid key 'l2'), all parameters",
        "vmapping": "candidates x seeds vmapped in each sweep; folds are a host loop sharing one compiled program",
    })
    results.write_results(run_dir, config, "cross_validation", conventions, rows, headline, {
        "l2": np.asarray(lams), "steps": full.steps, "cv_error_mean": cv_mean, "cv_error_std": cv_std,
        "cv_error_per_fold": per_fold, "test_error": test, "test_error_std": test_std})
    return headline
