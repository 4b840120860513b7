"""MNIST-1D baselines (Greydanus & Kobak 2020, "Scaling Down Deep Learning with MNIST-1D").

The paper's benchmark: on the 4000/1000 MNIST-1D split, logistic regression reaches 32% test
accuracy, an MLP 68%, a 1D CNN 94% and a bidirectional GRU 91%. With the 40 positions of every
signal permuted by ONE fixed permutation (train and test alike), the models that see the signal as
an unordered vector are unchanged (32%, 68%: a fixed permutation of the inputs is absorbed by the
first layer), while the models whose inductive bias is locality / order drop to 56% (CNN) and 57%
(GRU). The spatial prior, not capacity, is what the CNN and GRU exploit.

Protocol (the paper's training setup): Adam, learning rate 1e-2, minibatches of 100, cross-entropy;
every model is one vmapped sweep over seeds on the default data and a second on the shuffled data
(same compiled program, ``dl_course.data.load("mnist1d", shuffle=True)``). Models: ``linear``
(logistic regression), ``mlp`` (40-100-100-10 ReLU), ``cnn1d`` (3 conv layers of 25 channels,
kernel 5, strides 1/2/2, linear head), ``gru`` (bidirectional, hidden 6, linear read-out of all 40
hidden states; ``dl_course.models.gru``). Steps per model are in ``config.steps_by_model``: the paper
trains 6000 steps; the CNN and GRU default to fewer so the run fits on 2 CPU cores (the CNN is
converged by then, the GRU slightly short of it). Optionally (``config.loss_comparison``) the MLP is
trained again with the MSE and multiclass hinge losses (``dl_course.train.losses``), with the same
optimizer settings, for ``config.loss_comparison_steps`` steps.
"""

from __future__ import annotations

import copy

import numpy as np

from dl_course import data as data_lib
from dl_course import results
from dl_course.errors import ConfigError
from dl_course.train import sweep

# Greydanus & Kobak (2020), Table / Fig. 3: test accuracy in %.
PAPER = {"linear": {"default": 32.0, "shuffled": 32.0}, "mlp": {"default": 68.0, "shuffled": 68.0},
         "cnn1d": {"default": 94.0, "shuffled": 56.0}, "gru": {"default": 91.0, "shuffled": 57.0}}


def _model_config(config, name: str, loss: str):
    cfg = copy.deepcopy(config.train)
    cfg.model = name
    cfg.loss = loss
    cfg.model_options = copy.deepcopy(config.model_options_by_model[name])
    cfg.steps = int(config.steps_by_model[name] if loss == config.train.loss else config.loss_comparison_steps)
    return cfg


def _train(cfg, datasets: dict):
    """One sweep over seeds per dataset; datasets of equal shapes share one compiled program (the
    engine's cache), and the engine applies ``cfg.conv_impl`` to the model's convolutions."""
    return {key: sweep(cfg, data=d, progress=True) for key, d in datasets.items()}


def format_table(table: dict) -> str:
    """Markdown table: model, ours (mean ± std) and the paper, default and shuffled."""
    lines = ["| model | default (ours) | default (paper) | shuffled (ours) | shuffled (paper) |",
             "|---|---|---|---|---|"]
    for m, t in table.items():
        p = PAPER.get(m, {"default": float("nan"), "shuffled": float("nan")})
        lines.append(f"| {m} | {100 * t['default']:.1f} ± {100 * t['default_std']:.1f} | {p['default']:.0f} | "
                     f"{100 * t['shuffled']:.1f} ± {100 * t['shuffled_std']:.1f} | {p['shuffled']:.0f} |")
    return "\n".join(lines)


def run(config, run_dir: results.RunDir) -> dict:
    """Train every model on default and shuffled MNIST-1D; table, bar chart, curves; write."""
    from dl_course.plotting import classification as plots

    main_loss = str(config.train.loss)
    if len(config.loss_comparison) > 1 and (config.loss_comparison_model not in config.models
                                             or main_loss not in config.loss_comparison):
        raise ConfigError(f"loss_comparison needs loss_comparison_model ({config.loss_comparison_model!r}) among "
                          f"models {list(config.models)} and the main loss {main_loss!r} among the compared losses")
    options = config.train.dataset_options.to_dict()
    datasets = {False: data_lib.load("mnist1d", **{**options, "shuffle": False}),
                True: data_lib.load("mnist1d", **{**options, "shuffle": True})}
    rows, curves, arrays, conventions, reference_at_cmp = [], {}, {}, None, None
    jobs = [(m, main_loss) for m in config.models]
    jobs += [(config.loss_comparison_model, loss) for loss in config.loss_comparison if loss != main_loss]
    for name, loss in jobs:
        cfg = _model_config(config, name, loss)
        data = datasets if loss == main_loss else {False: datasets[False]}
        for shuffled, res in _train(cfg, data).items():
            conventions = conventions or dict(res.conventions)
            label = f"{name}{'' if loss == main_loss else f' ({loss})'}{' shuffled' if shuffled else ''}"
            if loss == main_loss and name == config.loss_comparison_model and not shuffled:
                curves[f"{name} ({loss})"] = (res.steps, res.metrics["test_accuracy"])
                at = np.flatnonzero(res.steps == int(config.loss_comparison_steps))
                reference_at_cmp = res.metrics["test_accuracy"][:, at[0] if len(at) else -1]
            curves[label] = (res.steps, res.metrics["test_accuracy"])
            arrays[f"{label}/test_accuracy"] = res.metrics["test_accuracy"]
            arrays[f"{label}/train_loss"] = res.metrics["train_loss"]
            arrays[f"{label}/steps"] = res.steps
            for i, g in enumerate(res.grid):
                rows.append({"model": name, "shuffled": bool(shuffled), "loss": loss, "seed": g["seed"],
                             "learning_rate": g["learning_rate"], "steps": int(cfg.steps),
                             "diverged": bool(res.diverged[i]),
                             "test_accuracy": float(res.metrics["test_accuracy"][i, -1]),
                             "train_accuracy": float(res.metrics["train_accuracy"][i, -1]),
                             "test_loss": float(res.metrics["test_loss"][i, -1])})

    def accs(model, shuffled, loss=main_loss):
        return np.array([r["test_accuracy"] for r in rows
                         if r["model"] == model and r["shuffled"] == shuffled and r["loss"] == loss])

    table = {m: {"default": float(accs(m, False).mean()), "default_std": float(accs(m, False).std()),
                 "shuffled": float(accs(m, True).mean()), "shuffled_std": float(accs(m, True).std()),
                 "paper_default": PAPER.get(m, {}).get("default", float("nan")) / 100,
                 "paper_shuffled": PAPER.get(m, {}).get("shuffled", float("nan")) / 100}
             for m in config.models}
    print(format_table(table))
    run_dir.figure("test_accuracy_bars.png", plots.baseline_bars(table))
    run_dir.figure("test_accuracy_curves.png", plots.accuracy_curves(
        {k: v for k, v in curves.items() if "(" not in k}, title="MNIST-1D test accuracy (mean ± std over seeds)"))
    headline = {"table": table, "table_markdown": format_table(table)}
    if len(config.loss_comparison) > 1:
        # every loss compared at the same step (the main cross-entropy run is read at that step)
        comp = {loss: (reference_at_cmp if loss == main_loss else accs(config.loss_comparison_model, False, loss))
                for loss in config.loss_comparison}
        headline["loss_comparison"] = {loss: {"mean": float(v.mean()), "std": float(v.std())}
                                       for loss, v in comp.items()}
        mdl = config.loss_comparison_model
        run_dir.figure("loss_comparison.png", plots.accuracy_curves(
            {f"{mdl} ({loss})": curves[f"{mdl} ({loss})"] for loss in config.loss_comparison},
            title=f"{mdl} on MNIST-1D, Adam {config.train.learning_rates[0]:g}: cross-entropy vs MSE vs hinge"))
    conventions.update({
        "shuffled": "one fixed permutation of the 40 positions (dl_course.data.mnist1d.spatial_permutation, "
                    f"seed {options.get('shuffle_seed', 0)}), applied to train and test",
        "steps_by_model": config.steps_by_model.to_dict(),
        "loss_comparison": f"{config.loss_comparison_model}, losses {list(config.loss_comparison)}, "
                           f"{config.loss_comparison_steps} steps (cross-entropy row: the main run)",
        "paper": "Greydanus & Kobak 2020: Adam 1e-2, batch 100, 6000 steps; accuracies in PAPER",
        "mse": "1/2 ||f(x) - onehot(y)||^2", "hinge": "multiclass (Crammer & Singer) max(0, 1 + max_{j!=y} f_j - f_y)",
    })
    results.write_results(run_dir, config, "mnist1d_baselines", conventions, rows, headline, arrays)
    return headline
