"""Loss landscapes around trained networks and the path that led there (Li et al. 2018).

Li, Xu, Taylor, Studer & Goldstein (2018, NeurIPS), "Visualizing the loss landscape of neural
nets": (§4) plots along random directions are only comparable between networks if each filter of
the direction is rescaled to the norm of the corresponding filter of the weights ("filter
normalization", biases and normalization parameters left unperturbed); (§7) an optimization path
is invisible in a random plane — in high dimension random directions are nearly orthogonal to it —
but lies almost entirely in the plane of its top two principal components, relative to the final
point. Keskar et al. (2017) and Jastrzębski et al. (2017) relate larger ratios of learning rate to
batch size to wider minima; the default compares two learning rates.

Protocol: one vmapped sweep (seeds × learning rates) with a trajectory hook recording
``num_records`` evenly spaced parameter vectors (initialization included); then, for every run in
one ``jax.jit(jax.vmap(...))`` program, in eval mode on the first ``measure.examples`` training
examples:

* a 2D slice ``L(θ_T + α d_1 + β d_2)`` along two filter-normalized Gaussian directions on a
  ``points × points`` grid of ``[−radius, radius]²``;
* the PCA plane of the trajectory (differences ``θ_t − θ_T``), its explained-variance ratios, the
  trajectory's coordinates in it and a 2D slice covering them;
* the share of the squared displacement ``‖θ_0 − θ_T‖²`` that each plane captures (least-squares
  projection): the quantitative form of Li et al.'s §7 observation.

Grid points are evaluated ``measure.batch_size`` at a time with ``vmap`` inside ``lax.map``
(``dl_course.measures.slice_2d``), never by a Python loop. The engine config is ``config.train``;
``num_records`` and ``measure.*`` are study keys (changing them does not recompile the sweep).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import measures, results
from dl_course.errors import ConfigError
from dl_course.train import record_steps, sweep, trajectory_hook
from dl_course.train.build import load_data
from dl_course.train.trajectory import trajectory_task


def landscape_program(train, data, points: int, radius: float, pca_margin: float, batch_size: int):
    """``f(trajectory[R, T, d], labels[R, m], keys[R], x[m, ...]) -> dict of [R, ...]`` for the
    engine config ``train``: both planes' slices, the PCA coordinates and captured fractions."""
    task, unravel = trajectory_task(train, data, "loss_landscape")
    eval_key = jax.random.PRNGKey(0)  # unused in eval mode (no dropout); the engine's convention
    unit = jnp.linspace(-1.0, 1.0, points)

    def one(traj_flat, y, key, x):
        batch = {"x": x, "y": y}

        def fn(p):
            loss, (_, metrics) = task.loss(p, {}, batch, eval_key, False)
            return {"loss": loss, "accuracy": metrics["accuracy"]}

        final = unravel(traj_flat[-1])
        trajectory = jax.vmap(unravel)(traj_flat)
        k1, k2 = jax.random.split(key)
        d1 = measures.filter_normalized_direction(k1, final)
        d2 = measures.filter_normalized_direction(k2, final)
        random_plane = measures.stack_directions(d1, d2)
        rand = measures.slice_2d(fn, final, d1, d2, radius * unit, radius * unit, batch_size=batch_size)
        pcs, explained = measures.pca_directions(trajectory, origin=final, num_directions=2)
        coords = measures.project_trajectory(trajectory, final, pcs)
        span = pca_margin * jnp.max(jnp.abs(coords), axis=0)
        pc = lambda i: jax.tree.map(lambda leaf: leaf[i], pcs)  # noqa: E731
        pca = measures.slice_2d(fn, final, pc(0), pc(1), span[0] * unit, span[1] * unit, batch_size=batch_size)
        displacement = traj_flat[0] - traj_flat[-1]
        return {"random_loss": rand["loss"], "random_accuracy": rand["accuracy"],
                "random_trajectory": measures.project_trajectory(trajectory, final, random_plane),
                "pca_loss": pca["loss"], "pca_accuracy": pca["accuracy"], "pca_trajectory": coords,
                "pca_alphas": span[0] * unit, "pca_betas": span[1] * unit, "pca_explained_variance": explained,
                "captured_pca": measures.captured_fraction(displacement, pcs),
                "captured_random": measures.captured_fraction(displacement, random_plane),
                "trajectory_loss": jax.lax.map(lambda p: fn(unravel(p))["loss"], traj_flat),
                "displacement_norm": jnp.linalg.norm(displacement)}

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None)))


def run(config, run_dir: results.RunDir) -> dict:
    """Train with a trajectory hook, evaluate both planes for every run, plot, write results."""
    from dl_course.plotting import landscape as plots

    t = config.train
    data = load_data(t)
    mc = config.measure
    if int(mc.points) < 3 or float(mc.radius) <= 0 or int(config.num_records) < 3:
        raise ConfigError(f"need measure.points >= 3, measure.radius > 0 and num_records >= 3; got "
                          f"{mc.points}, {mc.radius}, {config.num_records}")
    m = min(int(mc.examples), data.n_train)
    program = landscape_program(t, data, int(mc.points), float(mc.radius), float(mc.pca_margin),
                                int(mc.batch_size))
    rec = record_steps(int(t.steps), int(config.num_records) - 1, spacing="linear", include_init=True)
    res = sweep(t, data=data, hooks={"trajectory": trajectory_hook(rec)}, progress=True)
    traj = np.asarray(res.state.extras["trajectory"])
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(int(mc.seed)), i))(jnp.arange(len(res.grid)))
    out = jax.tree.map(np.asarray, jax.device_get(program(traj, res.train_labels(data, m), keys,
                                                          np.asarray(data.x_train[:m]))))
    unit = np.linspace(-1.0, 1.0, int(mc.points))
    alphas = float(mc.radius) * unit
    centre, half = int(mc.points) // 2, int(mc.points) // 4  # grid index of 0 and of +-radius/2 (odd points)

    rows = []
    for r, g in enumerate(res.grid):
        loss = out["random_loss"][r]
        l0 = float(loss[centre, centre])
        axis = [loss[centre - half, centre], loss[centre + half, centre], loss[centre, centre - half],
                loss[centre, centre + half]]
        rows.append({"seed": g["seed"], "learning_rate": g["learning_rate"], "diverged": bool(res.diverged[r]),
                     "final_train_loss": float(res.metrics["train_loss"][r, -1]),
                     "final_test_accuracy": float(res.metrics["test_accuracy"][r, -1]),
                     "centre_loss": l0, "half_radius": float(alphas[centre + half]),
                     "loss_increase_at_half_radius": float(np.mean(axis) - l0),
                     "max_loss_random_plane": float(np.max(loss)),
                     "pca_explained_variance": out["pca_explained_variance"][r].tolist(),
                     "captured_pca": float(out["captured_pca"][r]),
                     "captured_random": float(out["captured_random"][r]),
                     "displacement_norm": float(out["displacement_norm"][r])})
    ok = [row for row in rows if not row["diverged"]]
    if not ok:
        raise RuntimeError("every run diverged; lower the learning rates")
    by_lr = {f"{lr:g}": {k: float(np.mean([row[k] for row in ok if row["learning_rate"] == lr]))
                         for k in ("centre_loss", "loss_increase_at_half_radius", "captured_pca", "captured_random",
                                   "final_test_accuracy")}
             for lr in sorted({row["learning_rate"] for row in ok})}
    headline = {"measure_examples": m, "num_params": int(traj.shape[-1]), "record_steps": rec.tolist(),
                "captured_pca_min": float(min(row["captured_pca"] for row in ok)),
                "captured_random_max": float(max(row["captured_random"] for row in ok)),
                "pca_explained_variance_2_min": float(min(sum(row["pca_explained_variance"]) for row in ok)),
                "by_learning_rate": by_lr, "num_runs": len(rows), "num_diverged": int(res.diverged.sum())}
    for row in rows:
        print(f"lr {row['learning_rate']:<6g} seed {row['seed']}: loss {row['centre_loss']:.4f}, "
              f"+{row['loss_increase_at_half_radius']:.4f} "
              f"at |α| = {row['half_radius']:.2f}; PCA plane explains {sum(row['pca_explained_variance']):.3f} of the "
              f"path's variance and {row['captured_pca']:.3f} of ‖θ0 − θT‖² "
              f"(random plane: {row['captured_random']:.2e})")

    first = {}
    for r, g in enumerate(res.grid):  # one panel row per learning rate: its first seed
        first.setdefault(g["learning_rate"], r)
    panels = [(f"η = {lr:g}", {"alphas": alphas, "random_loss": out["random_loss"][r],
                                "random_trajectory": out["random_trajectory"][r],
                                "pca_alphas": out["pca_alphas"][r], "pca_betas": out["pca_betas"][r],
                                "pca_loss": out["pca_loss"][r], "pca_trajectory": out["pca_trajectory"][r],
                                "explained": out["pca_explained_variance"][r]})
              for lr, r in first.items()]
    run_dir.figure("landscape.png", plots.plot_landscape_study(
        panels, title=f"{t.model} on {t.dataset}: training loss ({t.optimizer}, batch {t.batch_size}, "
                      f"{t.steps} steps) around the final point"))
    conventions = {
        **res.conventions,
        "measures_mode": "eval (no dropout; no batch norm in the default model)",
        "measures_examples": f"first {m} training examples, each run's own training labels",
        "landscape_loss": f"mean {t.loss} over the measurement examples",
        "random_plane": ("two Gaussian directions, filter-normalized against the final parameters (Li et al. 2018 "
                         "sec. 4), biases and 1-D parameters not perturbed; coefficients in [-radius, radius]"),
        "pca_plane": ("top-2 principal directions (unit norm) of theta_t - theta_T over the recorded steps, "
                      f"mean-centred (Li et al. 2018 sec. 7); grid spans {mc.pca_margin} x the trajectory's extent"),
        "captured": "1 - ||delta - P delta||^2 / ||delta||^2, delta = theta_0 - theta_T, P the least-squares "
                    "projection onto the plane",
        "grid": f"{mc.points} x {mc.points}, evaluated {mc.batch_size} points at a time (vmap in lax.map)",
        "record_steps": rec.tolist(),
    }
    results.write_results(run_dir, config, "loss_landscape", conventions, rows, headline, {
        "alphas": alphas, "record_steps": rec, "steps": res.steps, "train_loss": res.metrics["train_loss"],
        "learning_rate": np.array([g["learning_rate"] for g in res.grid]),
        "seed": np.array([g["seed"] for g in res.grid]), **out})
    return headline
