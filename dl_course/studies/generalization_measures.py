"""Which complexity measures predict generalization? The protocol of Jiang, Neyshabur, Mobahi,
Krishnan & Bengio (2020, "Fantastic Generalization Measures and Where to Find Them", ICLR), with
the robust sign-error of Dziugaite et al. (2020, "In search of robust measures of
generalization", NeurIPS), on MNIST-1D MLPs.

A grid of models varying in several hyperparameters — ``learning_rate``, ``momentum`` and
``weight_decay`` vmapped in one program per architecture, ``width`` and ``depth`` one program
each — is trained with the engine's target-loss stop: every run is frozen at the first evaluation
where its train cross-entropy (eval mode, all training examples) is at or below
``config.target_train_loss``, so all compared models sit at the same training loss. Models that
never reach it, or diverge, are dropped and counted, as Jiang et al. do. For every kept model the
measures of ``dl_course.measures.generalization`` (oriented so that larger predicts a larger gap)
and two optimization-based ones (steps to cross-entropy 0.1, steps from 0.1 to the target) are
computed in one ``jit(vmap(...))`` per architecture; ``dl_course.measures.correlation`` then
ranks them by Kendall's τ with the generalization gap (test error − train error), by the
granulated Ψ (τ within groups differing in one hyperparameter, averaged over groups and axes), by
the conditional-mutual-information test and by the robust sign-error.

Two reference measures calibrate the protocol (``config.sanity_measures``): ``sanity_gap`` (the
gap itself: τ = Ψ = 1) and ``sanity_noise`` (independent Gaussian noise: τ ≈ 0).
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import results
from dl_course.measures import correlation, generalization as gm
from dl_course.train import ConfigError, sweep
from dl_course.train.build import load_data, make_task
from dl_course.train.state import stream

AXES = ("learning_rate", "momentum", "weight_decay", "width", "depth")


def _first_step_at_or_below(steps, curve, level: float) -> int:
    hit = np.flatnonzero(np.asarray(curve) <= level)
    return int(steps[hit[0]]) if hit.size else -1


def _measure_config(config) -> gm.MeasureConfig:
    return gm.MeasureConfig(**config.measure.to_dict())


def train_and_measure(config, data, width: int, depth: int) -> tuple[list[dict], dict]:
    """One architecture: the vmapped sweep over learning rate x momentum x weight decay x seeds
    with the target stop, then every measure of every run; (one row per model, conventions)."""
    cfg = copy.deepcopy(config.train)
    cfg.model_options.width = int(width)
    cfg.model_options.depth = int(depth)
    res = sweep(cfg, momentum=list(config.momenta), weight_decay=list(config.weight_decays), data=data, progress=True)
    task = make_task(cfg, data)
    m = min(int(config.measure_examples), data.n_train)
    x, y = jnp.asarray(data.x_train[:m]), jnp.asarray(data.y_train[:m])
    seeds = jnp.asarray([g["seed"] for g in res.grid], jnp.uint32)
    init = jax.jit(jax.vmap(lambda s: task.init(stream(jax.random.PRNGKey(s), "init"), x[:1])[0]))(seeds)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(int(config.measure_seed)), i))(
        jnp.arange(len(res.grid)) + 1000 * (int(width) + 10 * int(depth)))
    names = list(config.measures) or list(gm.GENERALIZATION_MEASURES)
    fn = gm.vmapped_generalization_measures(task.apply, names, _measure_config(config))
    values = jax.tree.map(np.asarray, fn(res.params, init, res.state.model_state, keys, x, y))
    rows = []
    for i, g in enumerate(res.grid):
        curve = res.metrics["train_loss"][i]
        to_01 = _first_step_at_or_below(res.steps, curve, 0.1)
        train_error = 1.0 - float(res.metrics["train_accuracy"][i, -1])
        test_error = 1.0 - float(res.metrics["test_accuracy"][i, -1])
        row = {**g, "width": int(width), "depth": int(depth), "diverged": bool(res.diverged[i]),
               "converged": bool(res.converged[i]), "steps_to_target": int(res.steps_to_target[i]),
               "final_train_loss": float(curve[-1]), "train_error": train_error, "test_error": test_error,
               "generalization_gap": test_error - train_error}
        row.update({f"measure_{k}": float(v[i]) for k, v in values.items()})
        row["measure_steps_to_ce_0.1"] = float(to_01)
        row["measure_steps_from_ce_0.1_to_target"] = float(res.steps_to_target[i] - to_01) if to_01 >= 0 else -1.0
        rows.append(row)
    return rows, res.conventions


def run(config, run_dir: results.RunDir) -> dict:
    """Train the grid to the target loss, measure, rank; write the table, figure and summary."""
    from dl_course.plotting import measure_ranking as plots

    if float(config.train.target_train_loss) <= 0:
        raise ConfigError("generalization_measures compares models at equal training loss: set "
                          "train.target_train_loss > 0 (Jiang et al. use 0.01)")
    data = load_data(config.train)
    rows, conventions = [], None
    for width in config.widths:
        for depth in config.depths:
            r, conventions = train_and_measure(config, data, width, depth)
            rows += r
    kept = [r for r in rows if r["converged"] and not r["diverged"]]
    dropped = len(rows) - len(kept)
    print(f"{len(kept)} of {len(rows)} models reached train loss {config.train.target_train_loss:g} "
          f"within {config.train.steps} steps; {dropped} dropped")
    if len(kept) < int(config.min_models):
        raise ConfigError(f"only {len(kept)} of {len(rows)} models reached the target train loss "
                          f"{config.train.target_train_loss:g} within {config.train.steps} steps (need "
                          f"{config.min_models}): raise train.steps or the learning rates")
    gap = np.asarray([r["generalization_gap"] for r in kept])
    names = sorted(k[len("measure_"):] for k in kept[0] if k.startswith("measure_"))
    measures = {n: np.asarray([r[f"measure_{n}"] for r in kept]) for n in names}
    if config.sanity_measures:
        noise = np.random.default_rng(int(config.measure_seed)).normal(size=len(kept))
        measures["sanity_gap"], measures["sanity_noise"] = gap.copy(), noise
        for r, v in zip(kept, noise):
            r["measure_sanity_gap"], r["measure_sanity_noise"] = r["generalization_gap"], float(v)
    hparams = [{a: r[a] for a in (*AXES, "seed")} for r in kept]
    table = correlation.correlation_table(measures, gap, hparams, axes=list(AXES), seed_key="seed")
    order = sorted(measures, key=lambda n: -table["granulated_psi"][n])
    real = [n for n in order if not n.startswith("sanity_")]
    print(f"{'measure':>36} {'tau':>7} {'Psi':>7} {'CMI':>7} {'sign-err':>8}")
    for n in order:
        print(f"{n:>36} {table['kendall_tau'][n]:>7.3f} {table['granulated_psi'][n]:>7.3f} "
              f"{table['cmi'][n]:>7.3f} {table['robust_sign_error'][n]:>8.3f}")
    families = {**gm.MEASURE_FAMILIES, "optimization": ("steps_to_ce_0.1", "steps_from_ce_0.1_to_target")}
    if config.sanity_measures:
        families["reference"] = ("sanity_gap", "sanity_noise")
    run_dir.figure("measure_ranking.png", plots.tau_psi_bars(table, families,
                                                             title=f"{len(kept)} MNIST-1D MLPs at train CE "
                                                                   f"{config.train.target_train_loss:g}"))
    best, worst = real[0], real[-1]
    run_dir.figure("best_and_worst.png", plots.measure_vs_gap(
        {best: measures[best], worst: measures[worst]}, gap, {n: table["granulated_psi"][n] for n in (best, worst)}))
    headline = {"kendall_tau": table["kendall_tau"], "granulated_psi": table["granulated_psi"],
                "psi_by_axis": table["psi_by_axis"], "cmi": table["cmi"],
                "robust_sign_error": table["robust_sign_error"], "num_models": len(kept), "num_dropped": dropped,
                "num_trained": len(rows), "best_measure": best, "worst_measure": worst,
                "best_psi": table["granulated_psi"][best], "worst_psi": table["granulated_psi"][worst],
                "ranking_by_psi": real,
                "gap_mean": float(gap.mean()), "gap_min": float(gap.min()), "gap_max": float(gap.max())}
    for fam, members in gm.MEASURE_FAMILIES.items():
        vals = [table["granulated_psi"][n] for n in members if n in table["granulated_psi"]]
        headline[f"mean_psi_{fam}"] = float(np.mean(vals)) if vals else None
    conventions = dict(conventions)
    conventions.update({
        "protocol": "Jiang et al. 2020: every model stopped at the same train cross-entropy (engine target stop, "
                    "eval mode, all training examples); non-converged and diverged models dropped and counted",
        "gap": "test error - train error (0-1, eval mode) at the stop",
        "measures": f"dl_course.measures.generalization, oriented as complexities; MeasureConfig "
                    f"{config.measure.to_dict()}; on the first {config.measure_examples} training examples",
        "kendall_tau": "tau-b over all kept models (ties count 0)",
        "granulated_psi": f"mean over axes {list(AXES)} of the mean tau within groups equal on every other axis "
                          "and seed",
        "cmi": "Jiang et al.'s normalized conditional mutual information, min over conditioning sets of <= 2 axes",
        "robust_sign_error": "Dziugaite et al. 2020: max over environments (pairs differing in one axis, seeds "
                             "averaged) of the sign-error",
    })
    results.write_results(run_dir, config, "generalization_measures", conventions, kept + [r for r in rows if r not in kept],
                          headline, {"generalization_gap": gap, **{f"measure_{k}": v for k, v in measures.items()}})
    return headline
