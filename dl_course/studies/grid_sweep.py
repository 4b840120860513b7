"""The main job: a seeds x learning-rates sweep, its table, learning curves and heatmap."""

from __future__ import annotations

import numpy as np

from dl_course import results
from dl_course.train import sweep


def format_table(result, metric_names=("final_train_loss", "final_test_accuracy")) -> str:
    """A text table, one line per (learning rate, seed): final train loss, test accuracy, diverged."""
    lines = [f"{'lr':>8} {'seed':>4} {'train_loss':>11} {'test_acc':>9} {'diverged':>8}"]
    for i, g in enumerate(result.grid):
        tl = result.metrics["train_loss"][i, -1]
        ta = result.metrics.get("test_accuracy", np.full_like(result.metrics["train_loss"], np.nan))[i, -1]
        lines.append(f"{g['learning_rate']:>8.4g} {g['seed']:>4d} {tl:>11.4g} {ta:>9.4f} "
                     f"{str(bool(result.diverged[i])):>8}")
    return "\n".join(lines)


def run(config, run_dir: results.RunDir) -> dict:
    """Train the grid of ``config.train`` with ``sweep``, print the table, write figures and summaries."""
    from dl_course.plotting import curves

    t = config.train
    res = sweep(t, checkpoint_dir=run_dir.checkpoint_dir, resume=run_dir.resume, progress=True)
    print(format_table(res))
    seeds, lrs = list(t.seeds), list(t.learning_rates)
    table = np.full((len(lrs), len(seeds)), np.nan)
    mask = np.zeros_like(table, bool)
    for i, g in enumerate(res.grid):
        r, c = lrs.index(g["learning_rate"]), seeds.index(g["seed"])
        table[r, c] = res.metrics.get("test_accuracy", res.metrics["test_loss"])[i, -1]
        mask[r, c] = res.diverged[i]
    groups = [f"lr={g['learning_rate']:g}" for g in res.grid]
    run_dir.figure("learning_curves.png", curves.learning_curves(
        res.steps, res.metrics["train_loss"], [g["seed"] for g in res.grid], groups,
        title=f"{t.model} on {t.dataset}: train loss ({t.optimizer}, batch {t.batch_size})"))
    if "test_accuracy" in res.metrics:
        run_dir.figure("test_accuracy_curves.png", curves.learning_curves(
            res.steps, res.metrics["test_accuracy"], [g["seed"] for g in res.grid], groups,
            ylabel="test accuracy", logy=False))
    run_dir.figure("heatmap.png", curves.heatmap(table, lrs, seeds, title="final test accuracy", mask=mask,
                                                 cbar_label="test accuracy"))
    best = int(np.nanargmax(np.where(res.diverged, -np.inf,
                                     res.metrics.get("test_accuracy", -res.metrics["test_loss"])[:, -1])))
    final_loss = res.metrics["train_loss"][:, -1]
    headline = {"learning_rates": lrs,
                "mean_final_train_loss_by_lr": [float(np.mean([final_loss[i] for i, g in enumerate(res.grid)
                                                               if g["learning_rate"] == lr])) for lr in lrs],
                "best_learning_rate": res.grid[best]["learning_rate"],
                "best_test_accuracy": float(res.metrics.get("test_accuracy", res.metrics["test_loss"])[best, -1]),
                "num_runs": len(res.grid), "num_diverged": int(res.diverged.sum()),
                "seconds": res.timing["total_s"],
                "first_chunk_incl_compile_s": res.timing["first_chunk_incl_compile_s"]}
    runs = results.sweep_runs(res)
    results.write_results(run_dir, config, "sweep", res.conventions, runs, headline,
                          {"steps": res.steps, "diverged": res.diverged,
                           "learning_rate": np.array([g["learning_rate"] for g in res.grid]),
                           "seed": np.array([g["seed"] for g in res.grid]), **res.metrics})
    return headline
