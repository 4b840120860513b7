"""SGD's own implicit regularizer (Smith, Dherin, Barrett & De 2021) and label-noise SGD's drift.

Three parts, one summary (math in ``dl_course.measures.implicit_bias.sgd_modified``, ``.sgd_flows``,
``.label_noise`` and ``dl_course.train.gradient_penalty``):

1. **Order of accuracy** (float64, a small tanh MLP on ``teacher`` data split into ``m``
   minibatches): the exact mean SGD iterate after one epoch (all ``m!`` orders, vmapped) against
   the gradient flows of ``L``, ``L̃_GD`` and ``L̃_SGD`` (diffrax) on a factor-2 ladder of ``η``;
   predicted log–log slopes 2, 2, 3 (``PREDICTED_SLOPES``).
2. **Generalization** (MNIST-1D MLP, engine ``config.train``; every run stopped at the engine's
   target train loss): the learning rate of the small batch is chosen on a validation split carved
   from the training set (a scan of batch sizes x learning rates, which also gives test accuracy vs
   ``η/B``); then, with fresh seeds, three arms at that learning rate: small-batch SGD, large-batch
   (full-batch) GD, and large-batch GD plus the explicit regularizer ``(λ/4m) Σ_k ‖∇L̂_k‖²`` over
   sub-batches of the small batch size at the theory's strength ``λ = η`` (Smith et al., Sec. 5).
   ``gap_recovered = (reg − large) / (small − large)`` of the mean test accuracies, with a paired
   bootstrap CI over seeds (a seed fixes the initialization in every arm).
3. **Label noise** (a diagonal linear network, see ``measures.implicit_bias.label_noise`` for why): GD to an
   interpolant, then GD, SGD and label-noise SGD over a grid of ``(η, σ)`` in one vmapped program;
   the Hutchinson trace (``measures.hessian_trace``) along the way; the rate of the trace's fall
   fitted against ``η`` and ``σ`` (predicted exponents 2 and 2 per step).
"""

from __future__ import annotations

import copy
import time

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import data as data_lib
from dl_course import models, results
from dl_course.data.splits import train_val_split
from dl_course.measures import hessian_trace, sgd_backward_error
from dl_course.measures.implicit_bias import label_noise
from dl_course.measures.implicit_bias.sgd_flows import PREDICTED_SLOPES
from dl_course.train import predict, supervised_task, sweep
from dl_course.train.build import load_data


def _ci(values, seed: int = 0) -> dict:
    """Mean and 95% percentile-bootstrap CI over the values (seeds)."""
    from scipy import stats

    v = np.asarray(values, float)
    if len(v) < 2:  # one seed: no interval
        return {"estimate": float(v.mean()), "ci": [float("nan"), float("nan")]}
    res = stats.bootstrap((v,), np.mean, confidence_level=0.95, n_resamples=2000, method="percentile",
                          random_state=np.random.default_rng(seed))
    low, high = res.confidence_interval
    return {"estimate": float(v.mean()), "ci": [float(low), float(high)]}


def gap_recovered(small, large, reg, seed: int = 0) -> dict:
    """``(mean reg − mean large) / (mean small − mean large)`` with a paired 95% percentile-bootstrap
    CI (seed ``i`` of every arm resampled together)."""
    from scipy import stats

    def stat(s, lg, r, axis=-1):
        return (np.mean(r, axis) - np.mean(lg, axis)) / (np.mean(s, axis) - np.mean(lg, axis))

    arrays = tuple(np.asarray(a, float) for a in (small, large, reg))
    res = stats.bootstrap(arrays, stat, paired=True, vectorized=True, n_resamples=2000, method="percentile",
                          random_state=np.random.default_rng(seed))
    return {"estimate": float(stat(*arrays)), "ci": [float(res.confidence_interval.low),
                                                     float(res.confidence_interval.high)]}


# --- part 1: order of accuracy ---------------------------------------------------------------

def order_problem(oc):
    """``(loss_fn(θ, batch), θ0, batches, info)``: a ``1-hidden-layer`` tanh MLP (flat float64
    parameters) on ``oc.n_train`` teacher examples split into ``oc.num_batches`` minibatches."""
    from jax.flatten_util import ravel_pytree

    data = data_lib.load("teacher", n_train=int(oc.n_train), n_test=8, dim=int(oc.dim), seed=int(oc.seed))
    model = models.get("mlp", width=int(oc.width), depth=1, activation="tanh", num_outputs=1)
    x, y = jnp.asarray(data.x_train, jnp.float64), jnp.asarray(data.y_train, jnp.float64).reshape(data.n_train, -1)
    params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64) * float(oc.init_scale),
                          model.init(jax.random.PRNGKey(int(oc.seed)), x[:1]))
    flat0, unravel = ravel_pytree(params)
    m = int(oc.num_batches)
    batches = {"x": x.reshape((m, -1) + x.shape[1:]), "y": y.reshape((m, -1) + y.shape[1:])}

    def loss_fn(theta, batch):
        return 0.5 * jnp.mean((model.apply(unravel(theta), batch["x"]) - batch["y"]) ** 2)

    return loss_fn, flat0, batches, {"num_params": int(flat0.size), "n_train": int(data.n_train)}


def order_of_accuracy(oc):
    with jax.enable_x64(True):
        loss_fn, theta0, batches, info = order_problem(oc)
        res = sgd_backward_error(loss_fn, theta0, batches, float(oc.eta_max), int(oc.num_etas),
                                 rtol=float(oc.rtol), atol=float(oc.atol))
    head = {**res.slopes, "predicted": dict(PREDICTED_SLOPES), "learning_rates": res.etas.tolist(),
            "num_batches": res.num_batches, "num_orders": res.num_orders,
            "distance_gradient_flow": res.dist_gradient_flow.tolist(),
            "distance_gd_modified_flow": res.dist_gd_modified_flow.tolist(),
            "distance_sgd_modified_flow": res.dist_sgd_modified_flow.tolist(),
            "integration_error_estimate": res.integration_error, "start_loss": res.start_loss,
            "mean_iterate_loss": res.mean_iterate_loss.tolist(), **info}
    return res, head


# --- part 2: generalization ------------------------------------------------------------------

def _test_accuracy(task, data, res) -> np.ndarray:
    out = []
    for i in range(len(res.grid)):
        p = jax.tree.map(lambda a: a[i], res.params)
        ms = jax.tree.map(lambda a: a[i], res.state.model_state)
        out.append(float(np.mean(np.argmax(predict(task, p, ms, data.x_test), -1) == data.y_test)))
    return np.asarray(out)


def generalization(config):
    """Validation scan, then the three arms (module docstring). Returns rows, scan rows, headline."""
    t, gc = config.train, config.generalization
    full = load_data(t)
    tr, va = train_val_split(full.n_train, float(gc.val_fraction), int(gc.split_seed))
    train_set = full.replace(x_train=full.x_train[tr], y_train=full.y_train[tr])
    val_set = train_set.replace(x_test=full.x_train[va], y_test=full.y_train[va])
    task = supervised_task(models.get(t.model, num_outputs=full.num_classes, **t.model_options.to_dict()), t.loss,
                           full.num_classes)
    n = train_set.n_train
    scan = []
    for b in gc.scan_batch_sizes:
        c = copy.deepcopy(t)
        c.batch_size = int(b)
        res = sweep(c, data=val_set, seeds=list(gc.scan_seeds), learning_rates=list(gc.scan_learning_rates))
        test_acc = _test_accuracy(task, full, res)
        for i, g in enumerate(res.grid):
            bb = n if int(b) == 0 else int(b)
            scan.append({"batch_size": bb, "seed": g["seed"], "learning_rate": g["learning_rate"],
                         "lr_over_batch": g["learning_rate"] / bb, "converged": bool(res.converged[i]),
                         "diverged": bool(res.diverged[i]), "steps_to_target": int(res.steps_to_target[i]),
                         "val_accuracy": float(res.metric("test_accuracy")[i]), "test_accuracy": float(test_acc[i]),
                         "train_loss": float(res.metric("train_loss")[i])})
    small = int(gc.small_batch)
    lrs = sorted({r["learning_rate"] for r in scan})
    val_by_lr = [np.mean([r["val_accuracy"] for r in scan if r["batch_size"] == small and r["learning_rate"] == lr
                          and r["converged"]] or [np.nan]) for lr in lrs]
    converged_by_lr = [sum(r["converged"] for r in scan if r["batch_size"] == small and r["learning_rate"] == lr)
                       for lr in lrs]
    eta = float(lrs[int(np.nanargmax(val_by_lr))])
    finite = [lr for lr, v in zip(lrs, val_by_lr) if np.isfinite(v)]
    arms = {"small_batch": (small, {}), "large_batch": (int(gc.large_batch), {}),
            "large_batch_regularized": (int(gc.large_batch), {"sgd_regularizer": [eta]})}
    rows = []
    for arm, (b, grid) in arms.items():
        c = copy.deepcopy(t)
        c.batch_size = b
        c.regularizer_batch_size = small if grid else 0
        res = sweep(c, data=train_set.replace(x_test=full.x_test, y_test=full.y_test), seeds=list(gc.seeds),
                    learning_rates=[eta], **grid)
        for i, g in enumerate(res.grid):
            rows.append({"arm": arm, "seed": g["seed"], "learning_rate": eta, "batch_size": n if b == 0 else b,
                         "sgd_regularizer": float(g.get("sgd_regularizer", 0.0)),
                         "regularizer_batch_size": small if grid else 0, "diverged": bool(res.diverged[i]),
                         "converged": bool(res.converged[i]), "steps_to_target": int(res.steps_to_target[i]),
                         "train_loss": float(res.metric("train_loss")[i]),
                         "test_accuracy": float(res.metric("test_accuracy")[i]),
                         "test_loss": float(res.metric("test_loss")[i])})
    ok = {a: [r for r in rows if r["arm"] == a] for a in arms}
    acc = {a: np.array([r["test_accuracy"] for r in ok[a]]) for a in arms}
    head = {"selected_learning_rate": eta, "validation_accuracy_by_learning_rate": dict(zip(map(str, lrs), val_by_lr)),
            "scan_runs_converged_by_learning_rate": dict(zip(map(str, lrs), converged_by_lr)),
            "selected_at_grid_edge": bool(eta in (finite[0], finite[-1])),  # among the learning rates that converged
            "small_batch": small, "large_batch": n if int(gc.large_batch) == 0 else int(gc.large_batch),
            "n_train": n, "n_validation": int(len(va)),
            "num_seeds": len(gc.seeds),
            "test_accuracy": {a: _ci(v) for a, v in acc.items()},
            "gap_small_minus_large": _ci(acc["small_batch"] - acc["large_batch"]),
            "gap_regularized_minus_large": _ci(acc["large_batch_regularized"] - acc["large_batch"]),
            "all_converged": bool(all(r["converged"] for r in rows)),
            "train_loss_range": [min(r["train_loss"] for r in rows), max(r["train_loss"] for r in rows)]}
    return rows, scan, head, acc


# --- part 3: label noise ---------------------------------------------------------------------

def label_noise_part(lc):
    with jax.enable_x64(True):
        rng = np.random.default_rng(int(lc.data_seed))
        x = jnp.asarray(rng.standard_normal((int(lc.n), int(lc.dim))))
        w_star = np.zeros(int(lc.dim))
        w_star[: int(lc.sparsity)] = rng.choice([-1.0, 1.0], int(lc.sparsity))
        y = x @ jnp.asarray(w_star)
        p0 = jax.jit(label_noise.fit_interpolant, static_argnums=(2, 3, 4))(x, y, float(lc.alpha), float(lc.fit_lr),
                                                                           int(lc.fit_steps))
        grid = [("label_noise_sgd", e, s, int(lc.batch_size)) for e in lc.learning_rates for s in lc.sigmas]
        ref = float(lc.reference_lr)
        grid += [("gd", ref, 0.0, int(lc.n)), ("sgd", ref, 0.0, int(lc.batch_size))]
        runs = [(seed, *g) for seed in lc.seeds for g in grid]
        key = jax.random.PRNGKey(int(lc.noise_seed))
        ps = jax.jit(label_noise.continue_training, static_argnums=(7, 8))(
            p0, x, y, key, [r[2] for r in runs], [r[3] for r in runs], [r[4] for r in runs], int(lc.steps),
            int(lc.record_every))
        loss = lambda p: label_noise.mse_loss(p, x, y)  # noqa: E731
        rec = ps.u.shape[1]
        # one probe key per run, shared by its records (common random numbers: a run that does not move keeps its
        # estimate exactly, and the end/start ratio is free of most of the probe noise)
        keys = jax.random.split(jax.random.PRNGKey(int(lc.trace_seed)), len(runs))
        hutch = jax.jit(jax.vmap(jax.vmap(lambda p, k: hessian_trace(loss, p, key=k, num_samples=int(lc.trace_samples)),
                                          in_axes=(0, None))))
        tr, se = (np.asarray(a) for a in hutch(ps, keys))
        exact = np.asarray(jax.vmap(jax.vmap(lambda p: label_noise.manifold_trace(p, x)))(ps))
        final_loss = np.asarray(jax.vmap(lambda p: loss(jax.tree.map(lambda a: a[-1], p)))(ps))
        w_final = np.asarray(jax.vmap(lambda p: label_noise.weights(jax.tree.map(lambda a: a[-1], p)))(ps))
        start_loss = float(loss(p0))
    steps = np.arange(rec) * int(lc.record_every)
    rows = []
    for i, (seed, kind, eta, sigma, b) in enumerate(runs):
        rows.append({"seed": int(seed), "kind": kind, "learning_rate": float(eta), "sigma": float(sigma),
                     "batch_size": int(b), "diverged": bool(not np.isfinite(final_loss[i])),
                     "trace_start": float(tr[i, 0]), "trace_end": float(tr[i, -1]),
                     "trace_end_stderr": float(se[i, -1]), "trace_ratio": float(tr[i, -1] / tr[i, 0]),
                     "exact_trace_ratio": float(exact[i, -1] / exact[i, 0]),
                     "exact_trace_end": float(exact[i, -1]), "final_train_loss": float(final_loss[i]),
                     "l1_norm_end": float(np.abs(w_final[i]).sum()),
                     "steps_to_drop": label_noise.steps_to_fraction(steps, exact[i], float(lc.drop_fraction))})
    return rows, steps, tr, exact, start_loss, float(np.abs(w_star).sum())


def label_noise_headline(rows, lc, start_loss, l1_star):
    ln = [r for r in rows if r["kind"] == "label_noise_sgd"]
    top = [r for r in ln if r["learning_rate"] == max(lc.learning_rates) and r["sigma"] == max(lc.sigmas)]
    fit = [r for r in ln if np.isfinite(r["steps_to_drop"]) and r["steps_to_drop"] > 0]

    def exponents(sel):
        if len(sel) < 3:
            return np.nan, np.nan
        return label_noise.fit_exponents([r["learning_rate"] for r in sel], [r["sigma"] for r in sel],
                                         [1.0 / r["steps_to_drop"] for r in sel])

    a, b = exponents(fit)
    per_seed = [exponents([r for r in fit if r["seed"] == s]) for s in lc.seeds]
    etas = sorted(lc.learning_rates)
    local = {}  # the η exponent between neighbouring rungs (pooled over σ and seeds): does it approach 2 as η -> 0?
    for lo, hi in zip(etas[:-1], etas[1:]):
        pair = [r for r in fit if r["learning_rate"] in (lo, hi)]
        local[f"{lo:g}-{hi:g}"] = exponents(pair)[0]
    return {
        "trace_ratio_label_noise": _ci([r["trace_ratio"] for r in top]),
        "label_noise_setting": {"learning_rate": max(lc.learning_rates), "sigma": max(lc.sigmas),
                                "batch_size": int(lc.batch_size)},
        "trace_ratio_gd": _ci([r["trace_ratio"] for r in rows if r["kind"] == "gd"]),
        "trace_ratio_sgd": _ci([r["trace_ratio"] for r in rows if r["kind"] == "sgd"]),
        "exponent_learning_rate": {"predicted": 2.0, "measured": a, "per_seed": [e[0] for e in per_seed],
                                   "seed_range": [min(e[0] for e in per_seed), max(e[0] for e in per_seed)],
                                   "local_by_learning_rate_pair": local},
        "exponent_sigma": {"predicted": 2.0, "measured": b, "per_seed": [e[1] for e in per_seed],
                           "seed_range": [min(e[1] for e in per_seed), max(e[1] for e in per_seed)]},
        "rate_definition": f"1 / steps until the exact trace fell by {lc.drop_fraction:g} of its start",
        "num_runs_in_fit": len(fit), "num_label_noise_runs": len(ln), "start_train_loss": start_loss,
        "l1_norm_teacher": l1_star, "l1_norm_end_label_noise": _ci([r["l1_norm_end"] for r in top]),
        "l1_norm_end_gd": _ci([r["l1_norm_end"] for r in rows if r["kind"] == "gd"]),
        "hutchinson_vs_exact_max_rel": float(max(abs(r["trace_end"] / r["exact_trace_end"] - 1) for r in rows)),
    }


def run(config, run_dir: results.RunDir) -> dict:
    """The three parts (module docstring); figures, rows (one per generalization run), headline."""
    from dl_course.plotting import sgd_regularization as plots

    t = config.train
    clock = {}
    t0 = time.perf_counter()
    order_res, order_head = order_of_accuracy(config.order)
    clock["order_of_accuracy_s"] = time.perf_counter() - t0
    print("order of accuracy (one epoch, m = {}): slopes GF {gradient_flow:.2f}, L_GD {gd_modified_flow:.2f}, "
          "L_SGD {sgd_modified_flow:.2f} (predicted 2, 2, 3)".format(order_res.num_batches, **order_res.slopes))
    run_dir.figure("order_of_accuracy.png", plots.order_figure(order_res, title=(
        f"one SGD epoch vs flows: tanh MLP ({order_head['num_params']} params, float64) on "
        f"{order_head['n_train']} teacher examples")))

    t0 = time.perf_counter()
    rows, scan, gen_head, acc = generalization(config)
    clock["generalization_s"] = time.perf_counter() - t0
    gen_head["gap_recovered"] = gap_recovered(acc["small_batch"], acc["large_batch"], acc["large_batch_regularized"])
    for arm, v in gen_head["test_accuracy"].items():
        print(f"{arm:>24}: test accuracy {v['estimate']:.4f} [{v['ci'][0]:.4f}, {v['ci'][1]:.4f}]")
    g = gen_head["gap_recovered"]
    print(f"gap recovered {g['estimate']:.2f} [{g['ci'][0]:.2f}, {g['ci'][1]:.2f}] at eta = "
          f"{gen_head['selected_learning_rate']:g} (chosen on validation)")
    run_dir.figure("generalization.png", plots.generalization_figure(acc, gen_head["test_accuracy"], scan, title=(
        f"{t.model} on {t.dataset} (n={gen_head['n_train']}): B={gen_head['small_batch']} vs "
        f"B={gen_head['large_batch']} vs B={gen_head['large_batch']} + explicit regularizer, train loss "
        f"{t.target_train_loss:g}")))

    t0 = time.perf_counter()
    lc = config.label_noise
    ln_rows, steps, traces, _, start_loss, l1_star = label_noise_part(lc)
    ln_head = label_noise_headline(ln_rows, lc, start_loss, l1_star)
    clock["label_noise_s"] = time.perf_counter() - t0
    print("label noise: tr H end/start {:.3f} (label noise) vs {:.3f} (GD), {:.3f} (SGD); exponents eta {:.2f}, "
          "sigma {:.2f} (predicted 2, 2)".format(
              ln_head["trace_ratio_label_noise"]["estimate"], ln_head["trace_ratio_gd"]["estimate"],
              ln_head["trace_ratio_sgd"]["estimate"], ln_head["exponent_learning_rate"]["measured"],
              ln_head["exponent_sigma"]["measured"]))
    run_dir.figure("label_noise.png", plots.label_noise_figure(steps, traces, ln_rows, title=(
        f"diagonal linear net, d={lc.dim}, n={lc.n}, from the GD interpolant of init α={lc.alpha:g}")))

    headline = {"order_of_accuracy": order_head, "gap_recovered": gen_head.pop("gap_recovered"),
                "generalization": gen_head, "label_noise": ln_head, "seconds": clock}
    conventions = {
        "order_of_accuracy": "float64 (jax.enable_x64); 1-hidden-layer tanh MLP, loss 1/2 mean squared error per "
                             "minibatch; teacher data split in order into m equal minibatches; exact mean over all m! "
                             "orders of one SGD epoch; flows integrated by diffrax Dopri8 in rescaled time, reference "
                             "at 100x tighter tolerances; slopes: least squares of log distance vs log eta",
        "generalization": {"loss": t.loss, "loss_reduction": "mean over examples", "dtype": "float32",
                           "dataset": t.dataset, "model": t.model, "model_options": t.model_options.to_dict(),
                           "validation": f"{config.generalization.val_fraction:g} of the training set "
                                         f"(split seed {config.generalization.split_seed}), used only to pick eta",
                           "stop": f"engine target stop at train loss {t.target_train_loss:g} (eval mode, all "
                                   f"training examples), checked every {t.eval_every} steps",
                           "regularizer": "large_batch_regularized adds (lambda/4)(1/m) sum_k ||grad L_k||^2 over "
                                          "sub-batches of the small batch size, lambda = the chosen eta "
                                          "(Smith et al. 2021, Sec. 5)",
                           "seeds": "a seed fixes the initialization and data order; arms share seeds (paired); "
                                    "scan seeds are disjoint from arm seeds",
                           "ci": "95% percentile bootstrap over seeds (scipy.stats.bootstrap, 2000 resamples; "
                                 "gap_recovered paired)"},
        "label_noise": {"model": "diagonal linear network w = u*u - v*v", "loss": "1/2 mean squared error",
                        "dtype": "float64", "minibatch": "B examples without replacement, fresh at every step",
                        "trace": f"Hutchinson ({lc.trace_samples} Rademacher probes) on the clean training loss; "
                                 "equals the closed form 4/n sum_j ||X_j||^2 (u_j^2 + v_j^2) exactly for this model",
                        "ratios": "tr H at the end / at the start of the continuation, CI over noise seeds"},
        "devices": f"{jax.devices()[0].device_kind} ({jax.default_backend()})",
    }
    runs = rows + [{**r, "part": "label_noise"} for r in ln_rows]
    results.write_results(run_dir, config, "sgd_implicit_regularization", conventions, runs, headline, {
        "order_learning_rates": order_res.etas, "dist_gradient_flow": order_res.dist_gradient_flow,
        "dist_gd_modified_flow": order_res.dist_gd_modified_flow,
        "dist_sgd_modified_flow": order_res.dist_sgd_modified_flow,
        "label_noise_steps": steps, "label_noise_traces": traces,
        "scan_batch_size": np.array([r["batch_size"] for r in scan]),
        "scan_learning_rate": np.array([r["learning_rate"] for r in scan]),
        "scan_val_accuracy": np.array([r["val_accuracy"] for r in scan]),
        "scan_test_accuracy": np.array([r["test_accuracy"] for r in scan])})
    return headline
