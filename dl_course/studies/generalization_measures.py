"""Which complexity measures predict generalization? The protocol of Jiang, Neyshabur, Mobahi,
Krishnan & Bengio (2020, "Fantastic Generalization Measures and Where to Find Them", ICLR), with
the robust sign-error of Dziugaite et al. (2020, "In search of robust measures of
generalization", NeurIPS), on MNIST-1D MLPs.

A grid of models varying in several hyperparameters — ``learning_rate``, ``momentum`` and
``weight_decay`` (and, given ``config.dropout_rates``, the dropout rate) vmapped in one program per
architecture, ``width`` and ``depth`` (and, given ``config.batch_sizes``, the batch size) one
program each, ``config.train.seeds`` seeds of every setting — is trained with the engine's exact target
stop: every run is frozen at the first step where its train cross-entropy (eval mode, all training
examples) is at or below ``config.target_train_loss``, its final loss within 2% below it
(``dl_course.train.exact_stop``), so all compared models sit at the same training loss. Models that
never reach it are dropped and counted, as Jiang et al. do, in three kinds: ``diverged``
(non-finite), ``collapsed`` (train accuracy <= 1.5 / classes or train loss above its initial value:
a run that fell to chance) and the rest, too slow. The gap is measured on the whole test set
(``config.train.dataset_options.num_samples`` makes MNIST-1D's generator produce >= 10,000 test
examples; training curves use the first ``curve_test_examples``). For every kept model the
measures of ``dl_course.measures.generalization.suite`` (oriented so that larger predicts a larger gap)
and two optimization-based ones (steps to cross-entropy 0.1, steps from 0.1 to the target) are
computed in one ``jit(vmap(...))`` per architecture; ``dl_course.measures.generalization.correlation`` then
ranks them by Kendall's τ with the generalization gap (test error − train error), by the
granulated Ψ (τ within groups differing in one hyperparameter, averaged over groups and axes), by
the conditional-mutual-information test and by the robust sign-error.

Two reference measures calibrate the protocol (``config.sanity_measures``): ``sanity_gap`` (the
gap itself: τ = Ψ = 1) and ``sanity_noise`` (independent Gaussian noise: τ ≈ 0); the final train
loss is a row too (after the exact stop it should rank nothing) and a covariate the CMI test may
condition on. Uncertainty (``dl_course.measures.generalization.ranking_ci``): cluster-bootstrap 95% CIs of τ
(resampling settings with their seeds) and of Ψ (resampling groups) for every measure, paired
intervals of the differences among the top measures, and the noise ceiling — τ of the gap on one
half of the test set against the other half, and between seed replicates.

Cost (``headline["profile"]``): per architecture, the training (compilation, training chunks, the
exact stop's replay, computed vs useful run-steps: frozen runs idle in a vmapped program unless
``config.train.compact_runs`` lets them leave it), the measures (one vmapped call over every model
of the architecture, all batch sizes together), the test errors; then the ranking statistics.
"""

from __future__ import annotations

import copy
import time

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import results
from dl_course.errors import ConfigError
from dl_course.measures.generalization import correlation, ranking_ci
from dl_course.measures.generalization import suite as gm
from dl_course.train import sweep
from dl_course.train.build import load_data, make_task
from dl_course.train.placement import over_run_devices, run_mesh, to_host
from dl_course.train.state import stream

AXES = ("learning_rate", "momentum", "weight_decay", "width", "depth")
#: Axes a variant adds when it sweeps them (``config.batch_sizes``, ``config.dropout_rates``).
OPTIONAL_AXES = ("batch_size", "dropout_rate")
#: Rows of the table that are references, not measures: the gap itself, noise, the confound.
REFERENCE_ROWS = ("sanity_gap", "sanity_noise", "final_train_loss")


def _first_step_at_or_below(steps, curve, level: float) -> int:
    hit = np.flatnonzero(np.asarray(curve) <= level)
    return int(steps[hit[0]]) if hit.size else -1


def axes_of(config) -> tuple[str, ...]:
    """The hyperparameter axes of this grid: the five of every variant, then batch size and
    dropout rate where the config sweeps them."""
    extra = (("batch_size",) if list(config.batch_sizes) else ()) + (
        ("dropout_rate",) if list(config.dropout_rates) else ())
    return AXES + extra


def _concat_results(results: list) -> tuple:
    """``(params, model_state)`` of several sweeps of one architecture, stacked along the run axis."""
    cat = lambda *xs: np.concatenate([np.asarray(x) for x in xs], 0)  # noqa: E731
    params = jax.tree.map(cat, *[r.params for r in results])
    model_state = jax.tree.map(cat, *[r.state.model_state for r in results])
    return params, model_state


def _padded_runs(tree):
    """``(tree, run count)``: the leaves' leading run axis padded to a multiple of the device count
    (repeating the last run), for :func:`dl_course.train.placement.over_run_devices`."""
    n_dev, n = run_mesh().devices.size, len(jax.tree.leaves(tree)[0])
    pad = -n % n_dev
    return jax.tree.map(lambda v: np.concatenate([np.asarray(v), np.repeat(np.asarray(v)[-1:], pad, 0)]), tree), n


def _measure_config(config) -> gm.MeasureConfig:
    return gm.MeasureConfig(**config.measure.to_dict())


def _test_errors(task, params, model_state, x, y, chunk: int = 2000) -> np.ndarray:
    """``[run, example]`` 0/1 errors of every run on ``x`` (eval mode), in chunks of examples, the
    runs sharded over the devices."""
    def one(p, ms, xb):
        return jnp.argmax(task.apply(p, ms, xb), -1)

    fn = over_run_devices(jax.vmap(one, in_axes=(0, 0, None)), 2)
    (params, model_state), n = _padded_runs((params, model_state))
    wrong = [to_host(fn(params, model_state, jnp.asarray(x[i:i + chunk])))[:n] != y[i:i + chunk][None]
             for i in range(0, len(x), chunk)]
    return np.concatenate(wrong, axis=1)


def train_and_measure(config, data, width: int, depth: int) -> tuple[list[dict], dict, dict]:
    """One architecture: the vmapped sweep over learning rate x momentum x weight decay (x dropout
    rate) x seeds with the exact target stop, one per batch size, then every measure of every run
    in one vmapped call, and its errors on the whole test set (two halves recorded apart); (one row
    per model, conventions, profile)."""
    n_curve = min(int(config.curve_test_examples), data.n_test)
    curve_data = data.replace(x_test=data.x_test[:n_curve], y_test=data.y_test[:n_curve])
    batch_sizes = [int(b) for b in config.batch_sizes] or [int(config.train.batch_size)]
    grid = {"momentum": list(config.momenta), "weight_decay": list(config.weight_decays)}
    if list(config.dropout_rates):
        grid["dropout_rate"] = [float(r) for r in config.dropout_rates]
    profile = {"width": int(width), "depth": int(depth), "train": []}
    sweeps, cfg = [], None
    for bs in batch_sizes:
        cfg = copy.deepcopy(config.train)
        cfg.model_options.width, cfg.model_options.depth, cfg.batch_size = int(width), int(depth), bs
        t0 = time.perf_counter()
        res = sweep(cfg, data=curve_data, progress=True, **grid)
        t = res.timing
        profile["train"].append({
            "batch_size": bs, "runs": len(res.grid), "wall_s": time.perf_counter() - t0,
            "first_chunk_incl_compile_s": t.get("first_chunk_incl_compile_s", 0.0), "train_s": t.get("train_s", 0.0),
            "exact_stop_s": t.get("exact_stop_s", 0.0), "run_steps": t.get("run_steps", 0),
            "active_run_steps": t.get("active_run_steps", 0), "compactions": t.get("compactions", [])})
        sweeps.append(res)
    task = make_task(cfg, data)
    m = min(int(config.measure_examples), data.n_train)
    x, y = jnp.asarray(data.x_train[:m]), jnp.asarray(data.y_train[:m])
    rows_grid = [{**g, "batch_size": bs} if config.batch_sizes else g for bs, res in zip(batch_sizes, sweeps)
                 for g in res.grid]
    params, model_state = _concat_results(sweeps)
    t0 = time.perf_counter()
    seeds = jnp.asarray([g["seed"] for g in rows_grid], jnp.uint32)
    init = jax.jit(jax.vmap(lambda s: task.init(stream(jax.random.PRNGKey(s), "init"), x[:1])[0]))(seeds)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(int(config.measure_seed)), i))(
        jnp.arange(len(rows_grid)) + 1000 * (int(width) + 10 * int(depth)))
    # one device: the suite's host callbacks (dl_course.linalg) must not fill every XLA:CPU thread
    fn = gm.vmapped_generalization_measures(task.apply, list(config.measures) or list(gm.GENERALIZATION_MEASURES),
                                            _measure_config(config))
    values = jax.tree.map(np.asarray, fn(params, init, model_state, keys, x, y))
    profile["measures_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    wrong = _test_errors(task, params, model_state, data.x_test, np.asarray(data.y_test))
    profile["test_errors_s"] = time.perf_counter() - t0
    half = data.n_test // 2
    rows = []
    i = 0
    for res in sweeps:
        for j, g in enumerate(res.grid):
            rows.append(_row(rows_grid[i], res, j, width, depth, wrong[i], half, data.num_classes))
            rows[-1].update({f"measure_{k}": float(v[i]) for k, v in values.items()})
            i += 1
    return rows, sweeps[-1].conventions, profile


def _row(g: dict, res, j: int, width: int, depth: int, wrong, half: int, num_classes: int) -> dict:
    """The table row of run ``j`` of sweep ``res`` (grid point ``g``; ``wrong``: its 0/1 test errors)."""
    curve = res.metrics["train_loss"][j]
    to_01 = _first_step_at_or_below(res.steps, curve, 0.1)
    train_acc = float(res.metrics["train_accuracy"][j, -1])
    train_error = 1.0 - train_acc
    test_error = float(wrong.mean())
    row = {**g, "width": int(width), "depth": int(depth),
           **outcome(bool(res.diverged[j]), bool(res.converged[j]), train_acc, curve, num_classes),
           "steps_to_target": int(res.steps_to_target[j]),
           "step_fraction": float(res.step_fraction[j]), "final_train_loss": float(curve[-1]),
           "train_error": train_error, "test_error": test_error, "generalization_gap": test_error - train_error,
           "gap_half_a": float(wrong[:half].mean()) - train_error,
           "gap_half_b": float(wrong[half:2 * half].mean()) - train_error}
    row["measure_steps_to_ce_0.1"] = float(to_01)
    row["measure_steps_from_ce_0.1_to_target"] = float(res.steps_to_target[j] - to_01) if to_01 >= 0 else -1.0
    return row


def outcome(diverged: bool, converged: bool, train_accuracy: float, train_loss_curve, num_classes: int) -> dict:
    """How a run ended: ``diverged`` (non-finite, the engine's flag), ``collapsed`` (finite but at
    chance: train accuracy <= 1.5 / classes, or a final train loss above the initial one),
    ``converged`` (reached the target; never a collapsed or diverged run) and ``kept`` (compared)."""
    curve = np.asarray(train_loss_curve, float)
    collapsed = not diverged and (train_accuracy <= 1.5 / num_classes or bool(curve[-1] > curve[0]))
    converged = converged and not diverged and not collapsed
    return {"diverged": diverged, "collapsed": collapsed, "converged": converged, "kept": converged}


def dropped_by_axis(rows: list[dict], axes=AXES) -> dict:
    """``{axis: {value: {"trained", "diverged", "collapsed", "not_converged"}}}`` (counts)."""
    out = {}
    for axis in axes:
        out[axis] = {}
        for value in sorted({r[axis] for r in rows}):
            sub = [r for r in rows if r[axis] == value]
            out[axis][str(value)] = {
                "trained": len(sub), "diverged": sum(r["diverged"] for r in sub),
                "collapsed": sum(r["collapsed"] for r in sub),
                "not_converged": sum(not (r["converged"] or r["diverged"] or r["collapsed"]) for r in sub)}
    return out


def one_seed(rows: list[dict]) -> bool:
    """One seed per setting: the sign-error pools its environments over the other axes and the
    seed-replicate noise ceiling is undefined."""
    return len({r["seed"] for r in rows}) == 1


def rank_with_uncertainty(config, kept: list[dict], test_examples: int) -> tuple[dict, dict]:
    """The correlation table of every measure (with the final train loss as a row and a CMI
    covariate), its bootstrap CIs, the paired differences among the top measures and the noise
    ceilings; ``(table, extra headline entries)``."""
    axes = axes_of(config)
    gap = np.asarray([r["generalization_gap"] for r in kept])
    names = sorted(k[len("measure_"):] for k in kept[0] if k.startswith("measure_"))
    measures = {n: np.asarray([r[f"measure_{n}"] for r in kept]) for n in names}
    final_loss = np.asarray([r["final_train_loss"] for r in kept])
    measures["final_train_loss"] = final_loss
    hparams = [{a: r[a] for a in (*axes, "seed")} for r in kept]
    loss_bin = np.digitize(final_loss, np.quantile(final_loss, [1 / 3, 2 / 3]))
    table = correlation.correlation_table(
        measures, gap, hparams, axes=list(axes), seed_key="seed", cmi_covariates={"final_train_loss_bin": loss_bin},
        test_examples=test_examples, min_effective_sample_size=float(config.min_effective_sample_size),
        pool_other_axes=one_seed(kept))
    b = int(config.bootstrap_resamples)
    clusters = [tuple(h[a] for a in axes) for h in hparams]
    tau_ci, tau_samples = ranking_ci.bootstrap_tau(measures, gap, clusters, num_resamples=b,
                                                   seed=int(config.measure_seed))
    psi_ci, _ = ranking_ci.bootstrap_psi(measures, gap, hparams, list(axes), num_resamples=b,
                                         seed=int(config.measure_seed))
    real = [n for n in sorted(measures, key=lambda n: -table["kendall_tau"][n]) if n not in REFERENCE_ROWS]
    top = real[:int(config.top_measures)]
    extra = {"kendall_tau_ci": tau_ci, "granulated_psi_ci": psi_ci,
             "top_by_tau": top,
             "top_differences": ranking_ci.paired_differences(tau_samples, table["kendall_tau"], top),
             "noise_ceiling_tau": {
                 "split_half": ranking_ci.split_half_tau([r["gap_half_a"] for r in kept],
                                                         [r["gap_half_b"] for r in kept]),
                 "seed_replicates": ranking_ci.replicate_tau(gap, hparams, "seed")["mean"]},
             "final_train_loss_range": [float(final_loss.min()), float(final_loss.max())]}
    return table, extra


def run(config, run_dir: results.RunDir) -> dict:
    """Train the grid to the target loss, measure, rank with CIs; write the table, figures, summary."""
    from dl_course.plotting import measure_ranking as plots

    if float(config.train.target_train_loss) <= 0:
        raise ConfigError("generalization_measures compares models at equal training loss: set "
                          "train.target_train_loss > 0 (Jiang et al. use 0.01)")
    for key, values, ok in (("batch_sizes", config.batch_sizes, lambda b: isinstance(b, int) and b > 0),
                            ("dropout_rates", config.dropout_rates,
                             lambda r: isinstance(r, float | int) and 0 <= r < 1)):
        bad = [v for v in values if not ok(v)]
        if bad:
            raise ConfigError(f"{key} {bad} invalid: give positive integers (batch sizes) or rates in [0, 1) "
                              "(dropout), or [] for no such axis")
    axes = axes_of(config)
    data = load_data(config.train)
    rows, conventions, profile = [], None, {"architectures": []}
    t_start = time.perf_counter()
    for width in config.widths:
        for depth in config.depths:
            r, conventions, prof = train_and_measure(config, data, width, depth)
            rows += r
            profile["architectures"].append(prof)
    kept = [r for r in rows if r["kept"]]
    n_div, n_col = sum(r["diverged"] for r in rows), sum(r["collapsed"] for r in rows)
    n_slow = len(rows) - len(kept) - n_div - n_col
    print(f"{len(kept)} of {len(rows)} models reached train loss {config.train.target_train_loss:g} within "
          f"{config.train.steps} steps; dropped: {n_div} diverged, {n_col} collapsed, {n_slow} not converged")
    if len(kept) < int(config.min_models):
        raise ConfigError(f"only {len(kept)} of {len(rows)} models reached the target train loss "
                          f"{config.train.target_train_loss:g} within {config.train.steps} steps (need "
                          f"{config.min_models}): raise train.steps or the learning rates")
    gap = np.asarray([r["generalization_gap"] for r in kept])
    if config.sanity_measures:
        noise = np.random.default_rng(int(config.measure_seed)).normal(size=len(kept))
        for r, v in zip(kept, noise):
            r["measure_sanity_gap"], r["measure_sanity_noise"] = r["generalization_gap"], float(v)
    t0 = time.perf_counter()
    table, extra = rank_with_uncertainty(config, kept, data.n_test)
    profile["statistics_s"] = time.perf_counter() - t0
    measures = {n: np.asarray([r[f"measure_{n}"] for r in kept])
                for n in table["kendall_tau"] if n != "final_train_loss"}
    order = sorted(table["kendall_tau"], key=lambda n: -table["granulated_psi"][n])
    real = [n for n in order if n not in REFERENCE_ROWS]
    print(f"{'measure':>36} {'tau':>7} {'tau 95% CI':>15} {'Psi':>7} {'CMI':>7} {'SE mean':>8} {'SE worst':>8}")
    for n in order:
        lo, hi = extra["kendall_tau_ci"][n]
        rse = table["robust_sign_error"][n]
        print(f"{n:>36} {table['kendall_tau'][n]:>7.3f} [{lo:>6.3f},{hi:>6.3f}] {table['granulated_psi'][n]:>7.3f} "
              f"{table['cmi'][n]:>7.3f} {rse['mean']:>8.3f} {rse['worst']:>8.3f}")
    families = {**gm.MEASURE_FAMILIES, "optimization": ("steps_to_ce_0.1", "steps_from_ce_0.1_to_target"),
                "confound": ("final_train_loss",)}
    if config.sanity_measures:
        families["reference"] = ("sanity_gap", "sanity_noise")
    ceiling = extra["noise_ceiling_tau"]["split_half"]
    run_dir.figure("measure_ranking.png", plots.tau_psi_bars(
        table, families, title=f"{len(kept)} MNIST-1D MLPs at train CE {config.train.target_train_loss:g} "
                               f"({len(config.train.seeds)} seeds, gap on {data.n_test} test examples)",
        intervals={"kendall_tau": extra["kendall_tau_ci"], "granulated_psi": extra["granulated_psi_ci"]},
        ceiling=ceiling))
    run_dir.figure("psi_by_axis.png", plots.psi_by_axis_heatmap(
        table["psi_by_axis"], order, list(axes),
        title=f"which hyperparameter each measure tracks ({len(kept)} models)"))
    best, worst = real[0], real[-1]
    run_dir.figure("best_and_worst.png", plots.measure_vs_gap(
        {best: measures[best], worst: measures[worst]}, gap, {n: table["granulated_psi"][n] for n in (best, worst)}))
    headline = {"kendall_tau": table["kendall_tau"], "granulated_psi": table["granulated_psi"],
                "psi_by_axis": table["psi_by_axis"], "cmi": table["cmi"], "cmi_argmin": table["cmi_argmin"],
                "robust_sign_error": table["robust_sign_error"], **extra,
                "num_models": len(kept), "num_dropped": len(rows) - len(kept), "num_diverged": n_div,
                "num_collapsed": n_col, "num_not_converged": n_slow, "num_trained": len(rows),
                "dropped_by_axis": dropped_by_axis(rows, axes), "best_measure": best, "worst_measure": worst,
                "best_psi": table["granulated_psi"][best], "worst_psi": table["granulated_psi"][worst],
                "ranking_by_psi": real, "test_examples": data.n_test,
                "gap_mean": float(gap.mean()), "gap_min": float(gap.min()), "gap_max": float(gap.max())}
    profile["total_s"] = time.perf_counter() - t_start
    headline["profile"] = summarize_profile(profile)
    headline["axes"] = list(axes)
    headline["psi_by_axis_best"] = table["psi_by_axis"][best]
    for fam, members in gm.MEASURE_FAMILIES.items():
        vals = [table["granulated_psi"][n] for n in members if n in table["granulated_psi"]]
        headline[f"mean_psi_{fam}"] = float(np.mean(vals)) if vals else None
    conventions = dict(conventions)
    conventions.update({
        "protocol": "Jiang et al. 2020: every model stopped at the same train cross-entropy (engine exact target "
                    "stop, eval mode, all training examples, final loss in [0.98, 1] x target); diverged, collapsed "
                    "and not converged models dropped and counted apart",
        "gap": f"test error (all {data.n_test} test examples) - train error (0-1, eval mode) at the stop; "
               f"gap_half_a / gap_half_b on the first / second {data.n_test // 2}",
        "collapsed": "train accuracy <= 1.5 / classes, or final train loss above the initial one",
        "measures": f"dl_course.measures.generalization.suite, oriented as complexities; MeasureConfig "
                    f"{config.measure.to_dict()}; on the first {config.measure_examples} training examples",
        "kendall_tau": "tau-b over all kept models (ties count 0); 95% CI: percentile cluster bootstrap over "
                       f"hyperparameter settings (all seeds of a setting together), {config.bootstrap_resamples} "
                       "resamples shared by every measure",
        "granulated_psi": f"mean over axes {list(axes)} of the mean tau within groups equal on every other axis "
                          "and seed; 95% CI: percentile bootstrap of the groups within each axis",
        "cmi": "Jiang et al.'s normalized conditional mutual information, min over conditioning sets of <= 2 of "
               "the axes and the final train loss's tercile",
        "robust_sign_error": ("Dziugaite et al. 2020: environments = settings differing in one axis, seed pairs "
                              if not one_seed(kept) else
                              "Dziugaite et al. 2020 with one seed: environments = (axis, value a, value b), the "
                              "pairs of models differing only in that axis with those values, pooled over the "
                              "settings of the other axes (each setting pair alone is one pair, ESS 1), pairs ")
                             + f"weighted by the Hoeffding weight (p - 0.5)+ for {data.n_test} test examples, "
                             f"environments with effective sample size < {config.min_effective_sample_size} dropped; "
                             "mean and worst over the kept environments, pairs = weighted pairs kept",
        "noise_ceiling_tau": "split_half: tau between the gaps on the two halves of the test set; "
                             "seed_replicates: mean over seed pairs of tau between the gaps of the same settings",
    })
    results.write_results(run_dir, config, "generalization_measures", conventions,
                          kept + [r for r in rows if r not in kept],
                          headline, {"generalization_gap": gap, **{f"measure_{k}": v for k, v in measures.items()}})
    return headline


def summarize_profile(profile: dict) -> dict:
    """Where the time went: sums over architectures of compilation + first chunk, training chunks,
    the exact stop, measures, test errors; the statistics; computed and useful run-steps (the rest
    is frozen runs idling in a vmapped program); the per-architecture entries kept."""
    trains = [t for a in profile["architectures"] for t in a["train"]]
    total = lambda k: float(sum(t[k] for t in trains))  # noqa: E731
    run_steps, useful = total("run_steps"), total("active_run_steps")
    return {"total_s": profile["total_s"], "total_min": profile["total_s"] / 60, "programs": len(trains),
            "models": int(total("runs")),
            "train_wall_s": total("wall_s"), "first_chunks_incl_compile_s": total("first_chunk_incl_compile_s"),
            "train_chunks_s": total("train_s"), "exact_stop_s": total("exact_stop_s"),
            "measures_s": float(sum(a["measures_s"] for a in profile["architectures"])),
            "test_errors_s": float(sum(a["test_errors_s"] for a in profile["architectures"])),
            "statistics_s": profile["statistics_s"], "run_steps": int(run_steps), "useful_run_steps": int(useful),
            "idle_fraction": 1.0 - useful / run_steps if run_steps else 0.0,
            "architectures": profile["architectures"]}
