"""Predictive uncertainty of SGD, SWA, SWAG, MultiSWAG, deep ensembles, MC dropout and temperature
scaling, in distribution and under dataset shift (Maddox et al. 2019, "A simple baseline for
Bayesian uncertainty in deep learning"; Lakshminarayanan et al. 2017; Ovadia et al. 2019, "Can you
trust your model's uncertainty?").

Training. ONE ``dl_course.train.sweep`` over ``config.seeds`` trains every member at once: the
seeds axis is the deep ensemble, and the ``swag_hook`` collects the SWAG moments of every run in
the same program (SWAG per seed; MultiSWAG = SWAG pooled over seeds). MC dropout needs a network
with dropout, trained in a second sweep over the same seeds. A validation split carved from the
training set (``dl_course.data.train_val_split``) is held out of both sweeps; temperature scaling
is fitted on it. All members see the same reduced training set.

Methods (``METHODS``); "per seed" methods give one predictive per seed, "pooled" ones one for all:

* ``sgd`` (MAP): the final iterate of the same trajectory (at the SWA-phase learning rate), S = 1;
* ``temp_scaling``: ``sgd`` logits / T, T fitted on the validation split (Guo et al. 2017);
* ``swa``: the SWAG mean θ̄ (Izmailov et al. 2018); ``swag_diag``, ``swag``: S posterior samples;
* ``multiswag``: the S·M samples of the M seeds' SWAG posteriors in one mixture (pooled);
* ``ensemble``: the M final iterates (pooled; Lakshminarayanan et al. 2017);
* ``mc_dropout``: T dropout masks at test time on the dropout network (Gal & Ghahramani 2016).

Predictions over members are ``jax.vmap``-ed (one compiled program per method), posterior samples
``lax.map``-ed inside. Metrics (accuracy, NLL, ECE, Brier) are those of ``dl_course.uncertainty.
calibration`` on the model average, vmapped over members and shift levels.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_course import results

# The shifted test sets live in their own module; re-exported for the studies that use ``unc.*``.
from dl_course.studies.shifted_sets import (  # noqa: F401
    DIGITS_CORRUPTIONS,
    ShiftedSets,
    digits_shifted_test_sets,
    shifted_test_sets,
    split_validation,
)
from dl_course.train import default_config, sweep
from dl_course.train.build import load_data, make_model
from dl_course.train.config import ConfigError
from dl_course.uncertainty import calibration, swag_hook
from dl_course.uncertainty.bma import swag_predictive
from dl_course.uncertainty.mc_dropout import mc_dropout_predict
from dl_course.uncertainty.predictive import Predictive
from dl_course.uncertainty.temperature import fit_temperature

METHODS = ("sgd", "temp_scaling", "swa", "swag_diag", "swag", "multiswag", "ensemble", "mc_dropout")
POOLED = ("multiswag", "ensemble")
METRICS = ("accuracy", "nll", "ece", "brier")

CONVENTIONS = {
    **{k: calibration.CONVENTIONS[k] for k in ("nll", "brier", "ece")},
    "accuracy": "top-1 of the model average",
    "evaluation_mode": "eval mode (train=False); MC dropout turns only the dropout layers on",
    "model_average": "p(y|x) = (1/S) sum_s softmax(f(x; theta_s)); S = 1 for sgd, temp_scaling, swa",
    "per_seed_vs_pooled": "per-seed methods have one row per seed; pooled methods (multiswag, ensemble) "
                          "one row with seed null, over the non-diverged seeds",
    "shift_level": "0 = clean test set (corruption 'none'); 1..5 = increasing intensity of one corruption",
    "dtype": "float32",
}


#: ``--config.paper_scale=True`` (for a GPU): the 1D CNN of the MNIST-1D paper (94% test accuracy
#: there), lr 0.05 (at the MLP's 0.2 the CNN's final iterates are poor: 78% test accuracy per seed),
#: 30 SWAG / MC-dropout samples (Maddox et al. use 30), 4x longer training. On one H200: about 65 s
#: per study; SGD reaches 94.6% test accuracy.
PAPER_SCALE = [
    "--config.model=cnn1d",
    "--config.model_options={}",
    "--config.learning_rates=[0.05]",
    "--config.steps=12000",
    "--config.eval_every=1000",
    "--config.swag.num_samples=30",
    "--config.mc_dropout.num_samples=30",
]


def training_config():
    """The members' training set-up shared by the uncertainty and OOD studies (see
    ``experiments/uncertainty.py``): a 40-256-256-10 MLP, SGD with momentum 0.9 and weight decay
    3e-3, lr 0.2 halved at half time, batch 128, 3000 steps, 5 seeds; SWAG from 55% of training,
    one snapshot per epoch, K = 20 deviations, 20 samples; MC dropout twin with rate 0.2, 20
    masks; 10% of the training set held out for temperature scaling."""
    c = default_config()
    c.dataset = "mnist1d"
    c.model = "mlp"
    c.model_options.width = 256
    c.model_options.depth = 2
    c.optimizer = "momentum"
    c.optimizer_options.momentum = 0.9
    c.optimizer_options.weight_decay = 3e-3
    c.schedule = "step"
    c.schedule_options.boundaries = (0.5,)
    c.schedule_options.factor = 0.5
    c.steps = 3000
    c.batch_size = 128
    c.eval_every = 300
    c.seeds = [0, 1, 2, 3, 4]
    c.learning_rates = [0.2]
    c.val_fraction = 0.1
    c.val_seed = 0
    c.swag = ml_collections.ConfigDict({"start_fraction": 0.55, "collect_every": 0, "num_deviations": 20,
                                        "num_samples": 20})
    c.mc_dropout = ml_collections.ConfigDict({"rate": 0.2, "num_samples": 20})
    c.eval_seed = 0
    c.paper_scale = False
    return c


def swag_schedule(config, n_train: int) -> dict:
    """When SWAG collects: from step ``round(start_fraction · steps)`` every ``collect_every`` steps
    (0 = once per epoch, as Maddox et al.); raises ``ConfigError`` if fewer than 2 snapshots fit."""
    steps, bs = int(config.steps), int(config.batch_size)
    per_epoch = 1 if bs == 0 else max(1, n_train // bs)
    every = int(config.swag.collect_every) or per_epoch
    start = int(round(float(config.swag.start_fraction) * steps))
    if not 0 < start <= steps:
        raise ConfigError(f"swag.start_fraction {config.swag.start_fraction} must be in (0, 1]")
    num = (steps - start) // every + 1
    if num < 2:
        raise ConfigError(f"SWAG would collect {num} snapshot(s) (steps {steps}, start {start}, "
                          f"every {every}); need >= 2")
    return {"start_step": start, "collect_every": every, "num_snapshots": num,
            "num_deviations": int(config.swag.num_deviations), "steps_per_epoch": per_epoch}


class Members(NamedTuple):
    """The trained members: ``result`` (SGD + SWAG sweep), ``dropout`` (MC-dropout sweep or None),
    their flax ``model`` / ``dropout_model``, and the SWAG collection schedule."""

    result: Any
    dropout: Any
    model: Any
    dropout_model: Any
    swag: dict


def train_members(config, data, run_dir: results.RunDir | None = None, methods=METHODS) -> Members:
    """Both sweeps over ``config.seeds`` at the single ``config.learning_rates[0]``."""
    if len(config.learning_rates) != 1:
        raise ConfigError(f"uncertainty studies train one learning rate (got {list(config.learning_rates)}); "
                          "the seeds axis is the ensemble")
    if "mc_dropout" in methods and float(config.mc_dropout.rate) <= 0:
        raise ConfigError("method mc_dropout needs mc_dropout.rate > 0")
    sched = swag_schedule(config, data.n_train)
    hook = swag_hook(sched["num_deviations"], collect_every=sched["collect_every"], start_step=sched["start_step"])
    ckpt = (lambda name: None) if run_dir is None else (lambda name: run_dir.checkpoint_dir / name)
    resume = bool(run_dir is not None and run_dir.resume)
    res = sweep(config, hooks={"swag": hook}, data=data, checkpoint_dir=ckpt("sgd"), resume=resume, progress=True)
    dropout, dropout_model = None, None
    if "mc_dropout" in methods:
        dcfg = config.copy_and_resolve_references()
        dcfg.model_options.dropout = float(config.mc_dropout.rate)
        dropout = sweep(dcfg, data=data, checkpoint_dir=ckpt("dropout"), resume=resume, progress=True)
        dropout_model = make_model(dcfg, data)
    return Members(res, dropout, make_model(config, data), dropout_model, sched)


@functools.partial(jax.jit, static_argnames=("model",))
def member_logits(model, params, model_state, x):
    """Eval-mode logits ``[R, N, K]`` of the R members stacked along the leading axis of ``params`` /
    ``model_state`` (vmapped)."""
    return jax.vmap(lambda p, ms: model.apply({"params": p, **ms}, x, train=False))(params, model_state)


@functools.partial(jax.jit, static_argnames=("model", "method", "num_samples"))
def _swag_all(model, states, model_state, x, x_refresh, keys, method, num_samples):
    def one(state, ms, key):
        return swag_predictive(model, state, ms, x, key, method=method, num_samples=num_samples,
                               x_refresh=x_refresh).sample_logits
    return jax.vmap(one)(states, model_state, keys)


@functools.partial(jax.jit, static_argnames=("model", "num_samples"))
def _dropout_all(model, params, model_state, x, keys, num_samples):
    def one(p, ms, key):
        return mc_dropout_predict(model, {"params": p, **ms}, x, key, num_samples).sample_logits
    return jax.vmap(one)(params, model_state, keys)


def _keys(seed: int, method: str, seeds) -> jax.Array:
    base = jax.random.fold_in(jax.random.PRNGKey(seed), METHODS.index(method))
    return jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.asarray(seeds, jnp.uint32))


def fit_temperatures(members: Members, x_val, y_val) -> np.ndarray:
    """One temperature per seed, fitted on the validation split (vmapped bisection)."""
    res = members.result
    logits = member_logits(members.model, res.params, res.state.model_state, jnp.asarray(x_val))
    fit = jax.jit(jax.vmap(fit_temperature, in_axes=(0, None)))(logits, jnp.asarray(y_val))
    return np.asarray(fit.temperature)


def predictives(config, members: Members, x, x_train, temperatures=None, methods=METHODS) -> dict:
    """``method -> Predictive`` with logits ``[M, S, N, K]``: M = number of seeds for per-seed
    methods, 1 for pooled ones (over the non-diverged seeds); ``temperatures`` (per seed) for
    ``temp_scaling``. MultiSWAG pools the very samples of ``swag``."""
    res, seeds = members.result, [g["seed"] for g in members.result.grid]
    x, x_train = jnp.asarray(x), jnp.asarray(x_train)
    ok = ~np.asarray(res.diverged)
    cache = {}

    def base(name):
        if name not in cache:
            if name == "sgd":
                cache[name] = member_logits(members.model, res.params, res.state.model_state, x)[:, None]
            elif name in ("swa", "swag_diag", "swag"):
                cache[name] = _swag_all(members.model, res.state.extras["swag"], res.state.model_state, x, x_train,
                                        _keys(int(config.eval_seed), name, seeds), name,
                                        1 if name == "swa" else int(config.swag.num_samples))
            else:
                d = members.dropout
                cache[name] = _dropout_all(members.dropout_model, d.params, d.state.model_state, x,
                                           _keys(int(config.eval_seed), name, seeds),
                                           int(config.mc_dropout.num_samples))
        return cache[name]

    out = {}
    for m in methods:
        if m not in METHODS:
            raise ConfigError(f"unknown method {m!r}; valid: {', '.join(METHODS)}")
        logits = base({"temp_scaling": "sgd", "ensemble": "sgd", "multiswag": "swag"}.get(m, m))
        if m == "temp_scaling":
            logits = logits / jnp.asarray(temperatures)[:, None, None, None]
        if m in POOLED:
            logits = logits[ok].reshape((1, -1) + logits.shape[2:])
        out[m] = Predictive(logits)
    return out


@jax.jit
def _model_average_log_probs(logits):
    """``[M, S, N, K]`` per-sample logits -> ``[M, N, K]`` log of each member's model average."""
    return jax.vmap(lambda lg: Predictive(lg).log_probs)(logits)


@jax.jit
def _segment_metrics(log_probs, labels):
    """``log_probs [M, G, n, K]`` of the model average on G test segments -> metric -> ``[M, G]``,
    and the reliability-diagram statistics of every (member, segment)."""
    def one(lp):
        p = jnp.exp(lp)
        return ({"accuracy": calibration.accuracy(p, labels), "nll": calibration.nll(lp, labels),
                 "ece": calibration.expected_calibration_error(p, labels),
                 "brier": calibration.brier_score(p, labels)},
                calibration.reliability_diagram(p, labels))
    return jax.vmap(jax.vmap(one))(log_probs)


def shift_metrics(preds: dict, sets: ShiftedSets) -> tuple[dict, dict, dict]:
    """Over the G = 1 + C·L segments of ``stack_shifted_inputs`` (clean, then levels 1..L of each
    corruption): ``metrics[method][metric] -> [M, G]``, ``diagrams[method]`` (reliability-diagram
    statistics, leaves ``[M, G, bins]``) and ``probs[method] -> [M, n, K]`` (model average on the
    clean test set). All methods are evaluated in one compiled call."""
    n, g = len(sets.y), 1 + len(sets.x) * sets.num_levels
    lps = {m: _model_average_log_probs(p.sample_logits) for m, p in preds.items()}
    sizes = [lp.shape[0] for lp in lps.values()]
    stacked = jnp.concatenate([lp.reshape((lp.shape[0], g, n, lp.shape[-1])) for lp in lps.values()])
    values, diagrams = _segment_metrics(stacked, jnp.asarray(sets.y))
    bounds = np.cumsum([0] + sizes)
    take = lambda tree, i: jax.tree_util.tree_map(lambda v: np.asarray(v[bounds[i]:bounds[i + 1]]), tree)
    metrics = {m: take(values, i) for i, m in enumerate(lps)}
    diags = {m: take(diagrams, i) for i, m in enumerate(lps)}
    probs = {m: np.asarray(jnp.exp(lp[:, :n])) for m, lp in lps.items()}
    return metrics, diags, probs


def pooled_reliability(d, segments):
    """The reliability diagram (and its ECE) of all members' predictions on ``segments`` taken as
    one set of points, from per-(member, segment) bin statistics: counts add, bin means are
    count-weighted, ``ECE = Σ_b |Σ count·acc − Σ count·conf| / N``."""
    count = d.count[:, segments].sum(axis=(0, 1)).astype(np.float64)
    w = d.count[:, segments].astype(np.float64)
    conf = np.nansum(w * d.confidence[:, segments], axis=(0, 1))
    acc = np.nansum(w * d.accuracy[:, segments], axis=(0, 1))
    safe = np.maximum(count, 1)
    diagram = calibration.ReliabilityDiagram(
        lower=d.lower[0, 0], upper=d.upper[0, 0], confidence=np.where(count > 0, conf / safe, np.nan),
        accuracy=np.where(count > 0, acc / safe, np.nan), count=count.astype(np.int64))
    return diagram, float(np.sum(np.abs(acc - conf)) / count.sum())


def stack_shifted_inputs(sets: ShiftedSets) -> np.ndarray:
    """Clean test set, then levels 1..L of each corruption: ``[(1 + C·L)·n, *input_shape]``."""
    return np.concatenate([next(iter(sets.x.values()))[0]] + [v[lv] for v in sets.x.values()
                                                              for lv in range(1, sets.num_levels + 1)])


def by_corruption(values: np.ndarray, sets: ShiftedSets) -> dict:
    """``[M, 1 + C·L]`` over the segments of ``stack_shifted_inputs`` -> corruption -> ``[M, L + 1]``
    (level 0, the clean test set, repeated in every corruption)."""
    num = sets.num_levels
    return {c: values[:, [0] + [1 + ci * num + lv for lv in range(num)]] for ci, c in enumerate(sets.x)}


def summary_rows(members: Members, metrics: dict, sets: ShiftedSets) -> list[dict]:
    """One row per (method, seed, corruption, shift level); level 0 once, corruption ``none``."""
    res = members.result
    seeds, lr = [g["seed"] for g in res.grid], res.grid[0]["learning_rate"]
    rows = []
    for m, vals in metrics.items():
        pooled = m in POOLED
        div = np.asarray((members.dropout if m == "mc_dropout" else res).diverged)
        per = {k: by_corruption(vals[k], sets) for k in METRICS}
        points = [("none", 0)] + [(c, lv) for c in sets.x for lv in range(1, sets.num_levels + 1)]
        for i in range(vals["nll"].shape[0]):
            for c, lv in points:
                row = {"method": m, "seed": None if pooled else seeds[i], "corruption": c, "shift_level": lv,
                       **{k: float(per[k][next(iter(sets.x)) if c == "none" else c][i, lv]) for k in METRICS},
                       "learning_rate": lr, "diverged": bool(div.any() if pooled else div[i])}
                if pooled:
                    row["members"] = [s for s, d in zip(seeds, np.asarray(res.diverged)) if not d]
                rows.append(row)
    return rows


def level_means(metrics: dict, sets: ShiftedSets) -> dict:
    """``method -> metric -> [L + 1]``: mean over members and corruptions at each level."""
    return {m: {k: np.mean(list(by_corruption(v[k], sets).values()), axis=(0, 1)).tolist() for k in METRICS}
            for m, v in metrics.items()}


def _figures(run_dir, metrics, diagrams, sets, title):
    from matplotlib.figure import Figure

    from dl_course.plotting import uncertainty as uplot

    corruptions, num_levels = list(sets.x), sets.num_levels
    per_corruption = {c: {m: {k: by_corruption(v[k], sets)[c] for k in METRICS} for m, v in metrics.items()}
                      for c in corruptions}
    uplot.shift_figure(per_corruption, METRICS, str(run_dir.path("metrics_vs_shift.png")))
    means = level_means(metrics, sets)
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, k in zip(axes, ("nll", "ece", "accuracy")):
        uplot.plot_metric_vs_shift(ax, {m: np.asarray(means[m][k]) for m in metrics}, k)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"{title}: mean over seeds and the {len(corruptions)} corruptions "
                 f"({', '.join(corruptions)})", fontsize="small")
    run_dir.figure("nll_vs_shift.png", fig)
    # Reliability diagrams, clean and at the middle shift level (all corruptions), pooling every
    # member's predictions as points.
    mid = (num_levels + 1) // 2
    fig = Figure(figsize=(2.5 * len(diagrams), 5.6), layout="constrained")
    axes = fig.subplots(2, len(diagrams), squeeze=False)
    for j, (m, d) in enumerate(diagrams.items()):
        for i, segs in enumerate(([0], [1 + ci * num_levels + mid - 1 for ci in range(len(corruptions))])):
            diagram, ece = pooled_reliability(d, segs)
            uplot.plot_reliability(axes[i, j], diagram, title=f"{m}, {'clean' if i == 0 else f'shift level {mid}'}",
                                   ece=ece)
            if j:
                axes[i, j].get_legend().remove()
    fig.suptitle(f"{title}: reliability (15 equal-width bins; predictions of all seeds pooled)", fontsize="small")
    run_dir.figure("reliability.png", fig)


def run(config, run_dir: results.RunDir) -> dict:
    """Train (two sweeps), predict with every method on the clean and shifted test sets, write the
    table, figures, summary.json and metrics.npz (``probs_<method>`` at shift level 0)."""
    data = load_data(config)
    sets = shifted_test_sets(data, int(config.shift.max_examples), list(config.shift.corruptions))
    train_data, x_val, y_val = split_validation(data, float(config.val_fraction), int(config.val_seed))
    members = train_members(config, train_data, run_dir)
    temps = fit_temperatures(members, x_val, y_val)
    preds = predictives(config, members, stack_shifted_inputs(sets), train_data.x_train, temps)
    metrics, diagrams, probs = shift_metrics(preds, sets)
    means = level_means(metrics, sets)
    num_levels = sets.num_levels
    print(f"{'method':>13} " + " ".join(f"{'nll@' + str(lv):>7}" for lv in range(num_levels + 1))
          + f" {'ece@0':>6} {'ece@' + str(num_levels):>6} {'acc@0':>6}")
    for m, v in means.items():
        print(f"{m:>13} " + " ".join(f"{x:>7.3f}" for x in v["nll"])
              + f" {v['ece'][0]:>6.3f} {v['ece'][-1]:>6.3f} {v['accuracy'][0]:>6.3f}")
    title = f"{config.model} on {config.dataset}"
    _figures(run_dir, metrics, diagrams, sets, title)
    seeds = [g["seed"] for g in members.result.grid]
    shifted = {m: {k: float(np.mean(v[k][1:])) for k in METRICS} for m, v in means.items()}
    headline = {
        "seeds": seeds,
        "in_distribution": {m: {k: v[k][0] for k in METRICS} for m, v in means.items()},
        "shifted_mean_over_levels": shifted,
        "by_level_mean_over_corruptions": means,
        "temperatures": dict(zip(map(str, seeds), temps.tolist())),
        "swag": members.swag,
        "num_diverged": int(members.result.diverged.sum()),
        "seconds": members.result.timing["total_s"] + (members.dropout.timing["total_s"] if members.dropout else 0.0),
    }
    conventions = {**members.result.conventions, **CONVENTIONS, "shift": sets.intensities,
                   "validation": train_data.info["validation"],
                   "probs_npz": "probs_<method>: float32 model-average probabilities on the clean test set, "
                                "[n_seeds or 1 (pooled), n_test, n_classes], seeds in the order of headline.seeds "
                                "(also saved as 'seeds')"}
    runs = summary_rows(members, metrics, sets)
    results.write_results(run_dir, config, "uncertainty", conventions, runs, headline,
                          {"y_test": sets.y, "seeds": np.asarray(seeds),
                           **{f"probs_{m}": p.astype(np.float32) for m, p in probs.items()},
                           "temperatures": temps})
    return headline
