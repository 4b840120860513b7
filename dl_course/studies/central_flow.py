"""Central flows (Cohen, Damian, Talwalkar, Kolter & Lee 2025, ICLR): GD's time-averaged trajectory.

In the edge-of-stability setting (full-batch GD, tanh MLP, MSE; Cohen et al. 2021) every learning
rate of the engine config ``config.train.learning_rates`` (× ``train.seeds``) is run three ways
from the same initial weights, each one program vmapped over the runs:

* GD itself (:func:`dl_course.measures.gd_trajectory`): the loss at every step, weights at the
  record times; its time-averaged loss is a centered moving average over ``average_window`` steps;
* its central flow (:func:`dl_course.measures.implicit_bias.central_flow.central_flow`): explicit Euler
  with ``substeps`` steps per GD step, ``Σ`` on the top ``k`` Hessian eigenvectors above ``tracking_threshold/η``;
  the predicted time-averaged loss ``L + tr(Σ)/η``; its step-size error is measured by a second
  integration at twice as many substeps over the first ``step_check_steps`` steps;
* the gradient flow ``dw/dτ = −η∇L`` (diffrax Tsit5, :func:`dl_course.measures.gradient_flow`).

λmax along GD and the gradient flow by cold Lanczos at every record (the central flow tracks its
own). The claims (paper §3-4, Figs. 1-3): once λmax reaches 2/η the central flow's predicted loss
follows GD's time-averaged loss and the gradient flow's loss does not; the flow's sharpness stays
at 2/η; GD stays close to the central flow in weight space and drifts away from the gradient
flow. Headline lists, one entry per η (means over seeds): ``relative_distance_central`` /
``relative_distance_gradient_flow`` (‖w_GD(T) − w_flow(T)‖ / ‖w_GD(T) − w_0‖ at the last record),
``loss_prediction_error_central`` / ``loss_prediction_error_gradient_flow`` (mean relative error
against GD's time-averaged loss over the records after the edge is reached: the first record where
the flow's λmax is within 1% of 2/η) and
``flow_sharpness_over_threshold`` (median of the flow's λmax·η/2 after the edge).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import results
from dl_course.measures import (
    central_flow,
    gd_trajectory,
    gradient_flow,
    sharpness_along,
    time_average,
)

EDGE_TOLERANCE = 0.01  # the edge is reached at the first record where the flow's |λmax·η/2 − 1| <= 0.01


def network_problem(train):
    """``(loss_fn on flat parameters, {seed: θ0}, data, info)`` for the engine config ``train``: its
    model with the mean-over-examples ``train.loss`` on the training set (eval mode), parameters
    initialised from each of ``train.seeds`` in ``train.dtype``."""
    from jax.flatten_util import ravel_pytree

    from dl_course.train import supervised_task
    from dl_course.train.build import load_data, make_model

    if int(train.batch_size) != 0 or train.optimizer != "sgd":
        raise ValueError("central_flow needs full-batch GD: train.batch_size = 0 and train.optimizer = 'sgd'")
    dtype = jnp.dtype(train.dtype)
    data = load_data(train)
    task = supervised_task(make_model(train, data), train.loss, data.num_classes)
    x = jnp.asarray(data.x_train, dtype)
    y = jnp.asarray(data.y_train, dtype if data.num_classes == 0 else jnp.int32)
    starts, unravel = {}, None
    for seed in train.seeds:
        params, model_state = jax.jit(task.init)(jax.random.PRNGKey(int(seed)), x[:1])
        flat, unravel = ravel_pytree(jax.tree.map(lambda p: jnp.asarray(p, dtype), params))
        starts[int(seed)] = flat
    batch, key = {"x": x, "y": y}, jax.random.PRNGKey(0)

    def loss_fn(theta):
        return task.loss(unravel(theta), model_state, batch, key, False)[0]

    return loss_fn, starts, data, {"num_params": int(flat.size), "n_train": int(data.n_train)}


def simulate(config) -> dict:
    """GD, central flow (and its finer-step check) and gradient flow for every (seed, η): a dict of
    numpy arrays with a leading run axis (module docstring), plus ``grid``, ``info``, ``timing``."""
    t = config.train
    loss_fn, starts, data, info = network_problem(t)
    grid = [{"seed": s, "learning_rate": float(lr)} for s in starts for lr in t.learning_rates]
    w0 = jnp.stack([starts[g["seed"]] for g in grid])
    etas = jnp.asarray([g["learning_rate"] for g in grid], w0.dtype)
    keys = jax.random.split(jax.random.PRNGKey(int(config.key_seed)), len(grid))
    n, r = int(t.steps), int(config.record_every)
    opts = {"k": int(config.k), "num_matvecs": int(config.num_matvecs), "qp_iters": int(config.qp_iters)}
    timing = {}

    def flow(num_steps, substeps):
        def one(w, eta, key):
            return central_flow(loss_fn, w, eta, key=key, num_steps=num_steps, record_every=r, substeps=substeps,
                                tracking_threshold=float(config.tracking_threshold), **opts)
        return jax.jit(jax.vmap(one))

    t0 = time.perf_counter()
    cf = jax.block_until_ready(flow(n, int(config.substeps))(w0, etas, keys))
    timing["central_flow_s"] = time.perf_counter() - t0
    out = {"grid": grid, "info": info, "data": data, "times": np.asarray(cf.times[0])}
    out.update({f"cf_{k}": np.asarray(v) for k, v in cf._asdict().items() if k != "times"})

    t0 = time.perf_counter()
    gd_losses, gd_w = jax.jit(jax.vmap(lambda w, eta: gd_trajectory(loss_fn, w, eta, num_steps=n, record_every=r)))(
        w0, etas)
    times = cf.times[0].astype(w0.dtype)
    gf_w = jax.jit(jax.vmap(lambda w, eta: gradient_flow(loss_fn, w, eta, times, rtol=float(config.gradient_flow_rtol),
                                                          atol=float(config.gradient_flow_atol))))(w0, etas)
    sharp = jax.jit(jax.vmap(
        lambda w, key: sharpness_along(loss_fn, w, key=key, num_iters=int(config.sharpness_iters))))
    all_losses = jax.jit(jax.vmap(jax.vmap(loss_fn)))
    out.update(gd_losses=np.asarray(gd_losses), gd_weights=np.asarray(gd_w), gf_weights=np.asarray(gf_w),
               gf_loss=np.asarray(all_losses(gf_w)), gd_sharpness=np.asarray(sharp(gd_w, keys)),
               gf_sharpness=np.asarray(sharp(gf_w, keys)), w0=np.asarray(w0))
    timing["gd_and_gradient_flow_s"] = time.perf_counter() - t0

    m = int(config.step_check_steps)
    if m > 0:
        m = max(r, min(m, n) // r * r)
        t0 = time.perf_counter()
        fine = flow(m, 2 * int(config.substeps))(w0, etas, keys)
        coarse = cf.weights[:, : m // r + 1]
        base = np.linalg.norm(out["gd_weights"][:, 1: m // r + 1] - out["w0"][:, None], axis=-1)
        diff = np.linalg.norm(np.asarray(coarse - fine.weights)[:, 1:], axis=-1)
        out["step_check_relative_distance"] = np.max(diff / base, axis=1)
        out["step_check_predicted_loss"] = np.max(np.abs(np.asarray(cf.predicted_loss[:, : m // r + 1]
                                                                    - fine.predicted_loss))
                                                  / np.asarray(fine.predicted_loss), axis=1)
        out["step_check_steps"] = m
        timing["step_check_s"] = time.perf_counter() - t0
    out["timing"] = timing
    return out


def run_summaries(config, sim) -> list[dict]:
    """Per-run rows: the headline quantities (module docstring) and diagnostics."""
    times, r = sim["times"], int(config.record_every)
    window = int(config.average_window) | 1
    avg = time_average(sim["gd_losses"], window)[:, ::r][:, : len(times)]
    rows = []
    for i, g in enumerate(sim["grid"]):
        thr = 2.0 / g["learning_rate"]
        ratio = sim["cf_sharpness"][i] / thr
        reached = np.flatnonzero(np.abs(ratio - 1.0) <= EDGE_TOLERANCE)
        edge = int(reached[0]) if reached.size else len(times)
        after = np.arange(len(times)) >= edge
        ok = after & np.isfinite(avg[i])
        base = np.linalg.norm(sim["gd_weights"][i] - sim["w0"][i], axis=-1)
        d_cf = np.linalg.norm(sim["gd_weights"][i] - sim["cf_weights"][i], axis=-1) / np.where(base > 0, base, np.nan)
        d_gf = np.linalg.norm(sim["gd_weights"][i] - sim["gf_weights"][i], axis=-1) / np.where(base > 0, base, np.nan)
        err_cf = np.abs(sim["cf_predicted_loss"][i] - avg[i]) / avg[i]
        err_gf = np.abs(sim["gf_loss"][i] - avg[i]) / avg[i]
        row = {
            "seed": g["seed"], "learning_rate": g["learning_rate"], "threshold": thr,
            "diverged": bool(not np.all(np.isfinite(sim["gd_losses"][i]))),
            "step_edge_reached": int(times[edge]) if edge < len(times) else None,
            "relative_distance_central": float(d_cf[-1]), "relative_distance_gradient_flow": float(d_gf[-1]),
            "max_relative_distance_central_after_edge": float(np.nanmax(d_cf[after])) if after.any() else None,
            "loss_prediction_error_central": float(np.mean(err_cf[ok])) if ok.any() else None,
            "loss_prediction_error_gradient_flow": float(np.mean(err_gf[ok])) if ok.any() else None,
            "flow_sharpness_over_threshold": float(np.median(ratio[after])) if after.any() else None,
            "flow_sharpness_max_deviation": float(np.max(np.abs(ratio[after] - 1.0))) if after.any() else None,
            "gd_sharpness_over_threshold": (float(np.median(sim["gd_sharpness"][i][after] / thr))
                                            if after.any() else None),
            "gradient_flow_final_sharpness_over_threshold": float(sim["gf_sharpness"][i][-1] / thr),
            "final_gd_loss": float(sim["gd_losses"][i][-1]), "final_gd_time_averaged_loss": float(avg[i][ok][-1])
            if ok.any() else None,
            "final_predicted_loss": float(sim["cf_predicted_loss"][i][-1]),
            "final_gradient_flow_loss": float(sim["gf_loss"][i][-1]),
            "max_num_active": int(sim["cf_num_active"][i].max()),
            "untracked_eigenvalue_over_threshold": float(sim["cf_eigenvalues"][i][:, -1].max() / thr),
            "max_relative_ritz_residual": float(np.max(sim["cf_residuals"][i][:, : int(config.k)]
                                                       / np.abs(sim["cf_eigenvalues"][i][:, : int(config.k)]))),
            "max_sdcp_infeasibility_over_threshold": float(sim["cf_infeasibility"][i].max() / thr),
        }
        if "step_check_relative_distance" in sim:
            row["step_check_relative_distance"] = float(sim["step_check_relative_distance"][i])
            row["step_check_predicted_loss"] = float(sim["step_check_predicted_loss"][i])
        rows.append(row)
    return rows


def _per_eta(rows, key, etas):
    out = []
    for eta in etas:
        vals = [r[key] for r in rows if r["learning_rate"] == eta and r[key] is not None]
        out.append(float(np.mean(vals)) if vals else None)
    return out


def run(config, run_dir: results.RunDir) -> dict:
    """:func:`simulate`, then the table, the figure, summary.json and metrics.npz; returns the headline."""
    from dl_course.plotting import central_flow as plots

    t = config.train
    t0 = time.perf_counter()
    sim = simulate(config)
    seconds = time.perf_counter() - t0
    rows = run_summaries(config, sim)
    etas = [float(lr) for lr in t.learning_rates]
    print(f"{'eta':>6} {'edge':>5} {'dist CF':>8} {'dist GF':>8} {'err CF':>8} {'err GF':>8} {'λ/(2/η)':>8} "
          f"{'h-check':>8}")
    for r in rows:
        edge = -1 if r["step_edge_reached"] is None else r["step_edge_reached"]
        print(f"{r['learning_rate']:>6.3g} {edge:>5d} {r['relative_distance_central']:>8.4f} "
              f"{r['relative_distance_gradient_flow']:>8.4f} {r['loss_prediction_error_central'] or np.nan:>8.4f} "
              f"{r['loss_prediction_error_gradient_flow'] or np.nan:>8.4f} "
              f"{r['flow_sharpness_over_threshold'] or np.nan:>8.4f} "
              f"{r.get('step_check_relative_distance', np.nan):>8.4f}")
    info = sim["info"]
    labels = [f"η = {g['learning_rate']:g}" + (f", seed {g['seed']}" if len(t.seeds) > 1 else "") for g in sim["grid"]]
    run_dir.figure("central_flow.png", plots.central_flow_figure(
        sim, labels, window=int(config.average_window) | 1, title=(
            f"full-batch GD vs its central flow vs the gradient flow: {t.model} ({info['num_params']} params, "
            f"{t.model_options.activation}) on {info['n_train']} {t.dataset} examples, loss {t.loss}")))
    headline = {"learning_rates": etas}
    for key in ("relative_distance_central", "relative_distance_gradient_flow", "loss_prediction_error_central",
                "loss_prediction_error_gradient_flow", "flow_sharpness_over_threshold", "flow_sharpness_max_deviation",
                "gd_sharpness_over_threshold", "step_edge_reached", "step_check_relative_distance",
                "step_check_predicted_loss"):
        if key in rows[0]:
            headline[key] = _per_eta(rows, key, etas)
    done = [r for r in rows if r["loss_prediction_error_central"] is not None]
    headline.update({
        "max_loss_prediction_error_central": max(r["loss_prediction_error_central"] for r in done) if done else None,
        "min_loss_prediction_error_gradient_flow": min(r["loss_prediction_error_gradient_flow"] for r in done)
        if done else None,
        "max_flow_sharpness_deviation": max(r["flow_sharpness_max_deviation"] for r in done) if done else None,
        "max_relative_distance_central": max(r["relative_distance_central"] for r in rows),
        "min_relative_distance_gradient_flow": min(r["relative_distance_gradient_flow"] for r in rows),
        "max_step_check_relative_distance": max(r.get("step_check_relative_distance", np.nan) for r in rows),
        "paper": ("central flow's predicted loss tracks GD's time-averaged loss and its sharpness stays at 2/η "
                  "while the gradient flow's loss and sharpness depart; GD stays close to the central flow in weight "
                  "space and not to the gradient flow (Cohen et al. 2025, Figs. 1-3; reported as curves, no table)"),
        "num_runs": len(rows), "num_seeds": len(t.seeds), "num_diverged": sum(r["diverged"] for r in rows),
        "seconds": seconds, **{k: float(v) for k, v in sim["timing"].items()},
    })
    conventions = {
        "loss": t.loss, "loss_reduction": "mean over examples",
        "mse_convention": "per-example 1/2 ||f(x) - onehot(y)||^2, mean over examples (Cohen et al.)",
        "dtype": str(t.dtype), "dataset": sim["data"].name, "data_info": sim["data"].info, "model": t.model,
        "model_options": t.model_options.to_dict(), "num_params": info["num_params"],
        "batching": "full-batch gradient descent; every flow and GD from the same flax init (PRNGKey(seed))",
        "time": "in GD steps: tau = k for the k-th GD iterate; dw/dtau = -eta[grad L + 1/2 grad <H, Sigma>]",
        "central_flow": (f"explicit Euler, {int(config.substeps)} steps per GD step, discrete complementarity "
                         f"(Sigma holds the top-{int(config.k)} eigenvalues at 2/eta after each Euler step); "
                         f"eigenpairs by block Krylov ({int(config.num_matvecs)} HVPs per Euler step, warm-started, "
                         f"block {int(config.k) + 1}); Sigma only on eigenvalues >= {config.tracking_threshold}/eta; "
                         f"SDCP by {int(config.qp_iters)} FISTA iterations on the PSD cone (closed form for k = 1)"),
        "step_size_error": ("the same flow at twice as many Euler steps over the first "
                            f"{sim.get('step_check_steps', 0)} GD steps: max ||w_h - w_h/2|| / ||w_GD - w_0|| over "
                            "records"),
        "gradient_flow": (f"diffrax Tsit5, PID controller rtol {config.gradient_flow_rtol:g}, "
                          f"atol {config.gradient_flow_atol:g}"),
        "time_average": f"centered moving average of GD's loss over {int(config.average_window) | 1} steps",
        "loss_prediction_error": ("mean over records after the edge (first record with |flow's lambda_max * eta/2 "
                                  "- 1| <= 0.01) where the window fits of |L_flow - <L_GD>| / <L_GD>, L_flow = L + "
                                  "tr(Sigma)/eta (central) or L(w_GF) (gradient flow)"),
        "relative_distance": "||w_GD(T) - w_flow(T)|| / ||w_GD(T) - w_0|| at the last record T",
        "flow_sharpness_over_threshold": "median over records after the edge of the central flow's lambda_max*eta/2",
        "sharpness_gd_and_gradient_flow": f"cold Lanczos, {int(config.sharpness_iters)} HVPs, at every record",
        "seeds_and_ci": (f"{len(t.seeds)} seed(s); per-eta headline values are means over seeds"
                         + ("; single seed: no confidence interval" if len(t.seeds) == 1 else "")),
        "devices": f"{jax.devices()[0].device_kind} ({jax.default_backend()})",
        "variant": getattr(run_dir, "variant", None) or "default",
    }
    metrics = {"learning_rate": np.asarray([g["learning_rate"] for g in sim["grid"]]),
               "seed": np.asarray([g["seed"] for g in sim["grid"]]), "times": sim["times"],
               "gd_losses": sim["gd_losses"], "gd_sharpness": sim["gd_sharpness"], "gf_loss": sim["gf_loss"],
               "gf_sharpness": sim["gf_sharpness"],
               "distance_gd_central_flow": np.linalg.norm(sim["gd_weights"] - sim["cf_weights"], axis=-1),
               "distance_gd_gradient_flow": np.linalg.norm(sim["gd_weights"] - sim["gf_weights"], axis=-1),
               "gd_distance_from_init": np.linalg.norm(sim["gd_weights"] - sim["w0"][:, None], axis=-1),
               **{k: v for k, v in sim.items() if k.startswith("cf_") and k != "cf_weights"}}
    results.write_results(run_dir, config, "central_flow", conventions, rows, headline, metrics)
    return headline
