"""Score-based generative models on 2D toy data (Song et al. 2021, ICLR, "Score-Based Generative
Modeling through Stochastic Differential Equations").

For each dataset (8-mode Gaussian mixture, swiss roll, two moons) a ``ScoreMLP`` is trained with
continuous-time denoising score matching through the engine (``dl_course.train.sweep`` with
``generative.make_task``; every seed of one dataset in one vmapped program, the same compiled
program for every dataset since the datasets share shapes). Then, per dataset and seed:

* samples from each reverse-time sampler (Euler-Maruyama, predictor-corrector, probability-flow
  ODE), scored against held-out data by the unbiased MMD^2 (Gaussian kernel, median-heuristic
  bandwidth; ``mmd = sqrt(max(MMD^2, 0))``) and the sliced 2-Wasserstein distance;
* the test negative log-likelihood ``-log p(x)`` in nats through the probability-flow ODE with the
  exact 2D divergence (Song et al. 2021, Sec. 4.3; instantaneous change of variables of
  Chen et al. 2018);
* the learned density ``exp(log p)`` on a grid next to the true one: closed form for the Gaussian
  mixture, a Gaussian KDE of 50 000 fresh draws for the swiss roll and moons (no closed form).

Reference points recorded with the results: ``mmd`` / ``sliced_wasserstein`` between two
independent draws of the data (the noise floor at this sample size), the exact NLL of the mixture
(its true entropy estimate on the test set), and the NLL the same ODE pipeline gives with the
mixture's exact score (checks the likelihood computation itself, independent of training).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from dl_course import data as data_lib
from dl_course import results
from dl_course.data.dataset import make_dataset
from dl_course.generative import (GaussianMixture, ScoreMLP, get_sde, log_likelihood, make_score_fn, make_task,
                                  mmd2, sample, sliced_wasserstein)
from dl_course.train import sweep

#: Plot ranges per dataset (the data's default scales: mixture radius 4, roll scale 0.25).
LIMITS = {"gaussian_mixture": (-5.5, 5.5), "swiss_roll": (-3.5, 4.0), "moons": (-1.7, 2.7)}


def density_only(data: data_lib.Dataset) -> data_lib.Dataset:
    """The same inputs with all-zero float targets ``[n, 1]`` (the score task ignores ``y``), so that
    every toy set has the same array signature and shares one compiled training program."""
    return make_dataset(data.x_train, np.zeros((data.n_train, 1)), data.x_test, np.zeros((len(data.x_test), 1)),
                        0, data.name, dict(data.info))


def true_mixture(data: data_lib.Dataset) -> GaussianMixture:
    """The generating mixture of ``gaussian_mixture`` data (isotropic components), from ``data.info``."""
    info = data.info
    centers = np.asarray(info["centers"], np.float32)
    covs = np.broadcast_to(np.eye(2, dtype=np.float32) * info["std"] ** 2, (len(centers), 2, 2))
    return GaussianMixture.from_covs(np.asarray(info["weights"], np.float32), centers, covs)


def reference_logpdf(name: str, data: data_lib.Dataset, options: dict, points: np.ndarray, num_kde: int = 50_000):
    """``log p`` of the data distribution at ``points``: exact for the mixture, else a Gaussian KDE
    (Scott's bandwidth) of ``num_kde`` fresh draws of the generator (a different seed from the data)."""
    if name == "gaussian_mixture":
        return np.asarray(true_mixture(data).logpdf(jnp.asarray(points)))
    from scipy.stats import gaussian_kde

    fresh = data_lib.load(name, **{**options, "n_train": num_kde, "n_test": 10, "seed": 12345}).x_train
    return gaussian_kde(fresh.T).logpdf(points.T)


def grid_points(lim, num: int) -> tuple[np.ndarray, np.ndarray]:
    """``num x num`` grid on ``lim x lim``: the axis and the ``[num^2, 2]`` points (row-major in y)."""
    g = np.linspace(lim[0], lim[1], num, dtype=np.float32)
    xx, yy = np.meshgrid(g, g)
    return g, np.stack([xx.ravel(), yy.ravel()], -1)


def overview_figure(panels: list[dict], grid_axis_by_name: dict, t_field: float) -> Figure:
    """One row per dataset: samples over data, learned score field at ``t_field``, PF-ODE density,
    true (or KDE) density; the densities share one colour scale per row."""
    fig = Figure(figsize=(13.0, 3.3 * len(panels)))
    axes = fig.subplots(len(panels), 4, squeeze=False)
    for row, p in zip(axes, panels):
        lim = LIMITS.get(p["name"], (-4.0, 4.0))
        d = p["data"][:3000]
        s = p["samples"][:3000]
        row[0].scatter(d[:, 0], d[:, 1], s=2, c="0.65", alpha=0.5, label="data", rasterized=True)
        row[0].scatter(s[:, 0], s[:, 1], s=2, c="tab:blue", alpha=0.5, label=p["sampler"], rasterized=True)
        row[0].legend(loc="upper right", markerscale=5, frameon=False, fontsize=7)
        row[0].set_title(f"{p['name']}: samples ({p['sampler']})", fontsize=9)
        fp, fs = p["field_points"], p["field_scores"]
        row[1].scatter(d[:, 0], d[:, 1], s=1, c="0.75", alpha=0.4, rasterized=True)
        row[1].quiver(fp[:, 0], fp[:, 1], fs[:, 0], fs[:, 1], color="tab:red", angles="xy")
        row[1].set_title(f"learned score, t = {t_field:g}", fontsize=9)
        g = grid_axis_by_name[p["name"]]
        n = len(g)
        learned, ref = np.exp(p["logp_grid"]).reshape(n, n), np.exp(p["ref_logp_grid"]).reshape(n, n)
        vmax = float(np.nanmax(ref))
        for ax, img, title in ((row[2], learned, f"PF-ODE density (test NLL {p['nll']:.2f})"),
                               (row[3], ref, p["ref_label"])):
            ax.imshow(img, origin="lower", extent=(g[0], g[-1], g[0], g[-1]), cmap="viridis", vmin=0.0, vmax=vmax)
            ax.set_title(title, fontsize=9)
        for ax in row:
            ax.set_xlim(lim)
            ax.set_ylim(lim)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def _conventions(config, train_conventions) -> dict:
    return {**train_conventions,
            "task": "denoising score matching (continuous time, sigma^2 weighting), eps-parameterized ScoreMLP",
            "sde": f"{config.sde} {dict(config.sde_options)}",
            "mmd": "sqrt(max(unbiased MMD^2, 0)) with a Gaussian kernel of median-heuristic bandwidth, "
                   f"{config.num_metric_samples} samples vs {config.num_metric_samples} test points",
            "sliced_wasserstein": f"sliced W2, {config.num_projections} random projections, same samples as mmd",
            "nll": f"mean -log p(x) over the test set in nats, probability-flow ODE from t = {config.likelihood_eps:g} "
                   f"to T, {config.likelihood_solver} with {config.likelihood_steps} steps, exact divergence",
            "samplers": f"{config.sample_steps} steps for SDE samplers (pc: reverse-diffusion predictor, 1 "
                        f"Langevin corrector, snr {config.pc_snr}); ode: rk4 with {config.ode_steps} steps; "
                        "no final denoising step",
            "reference_density": "gaussian_mixture: exact; others: Gaussian KDE (Scott) of 50000 fresh draws"}


def run(config, run_dir: results.RunDir) -> dict:
    """Train one score model per (dataset, seed), sample with every sampler, evaluate, plot."""
    sde = get_sde(config.sde, **config.sde_options.to_dict())
    model = ScoreMLP(hidden_dims=tuple(config.hidden_dims), embed_dim=int(config.embed_dim))
    task = make_task(model, sde)
    apply_ll = jax.jit(lambda sf_params, x, key: log_likelihood(
        sde, make_score_fn(model.apply, sf_params, sde), x, key, divergence="exact", eps=config.likelihood_eps,
        solver=config.likelihood_solver, num_steps=int(config.likelihood_steps)))
    n_samp = int(config.num_samples)
    samplers = list(config.samplers)
    sample_fns = {
        m: jax.jit(lambda p, key, m=m: sample(
            sde, make_score_fn(model.apply, p, sde), (n_samp, 2), key, method=m,
            num_steps=int(config.ode_steps if m == "ode" else config.sample_steps),
            **({"snr": float(config.pc_snr)} if m == "pc" else {})))
        for m in samplers}
    score_at = jax.jit(lambda p, x, t: make_score_fn(model.apply, p, sde)(x, t))
    n_metric = int(config.num_metric_samples)
    metric_fn = jax.jit(lambda a, b, key: (mmd2(a, b), sliced_wasserstein(a, b, key, int(config.num_projections))))

    runs, panels, grid_axes, metrics, headline = [], [], {}, {}, {}
    train_conventions = {}
    for di, name in enumerate(config.datasets):
        options = dict(config.dataset_options.to_dict())
        raw = data_lib.load(name, **options)
        data = density_only(raw)
        res = sweep(config, task=task, data=data, progress=False)
        train_conventions = res.conventions
        print(f"[{name}] trained {len(res.grid)} run(s): final train loss "
              f"{np.round(res.metrics['train_loss'][:, -1], 4).tolist()}  ({res.timing['total_s']:.0f}s)")
        x_test = jnp.asarray(data.x_test)
        m_test = x_test[:n_metric]
        key_data = jax.random.key(1000 + di)
        floor_mmd2, floor_sw = metric_fn(jnp.asarray(data.x_train[:n_metric]), m_test, key_data)
        g, pts = grid_points(LIMITS.get(name, (-4.0, 4.0)), int(config.density_grid))
        grid_axes[name] = g
        ref_grid = reference_logpdf(name, raw, options, pts)
        metrics[f"{name}/train_loss"] = res.metrics["train_loss"]
        metrics[f"{name}/test_loss"] = res.metrics["test_loss"]
        metrics[f"{name}/ref_logp_grid"] = ref_grid.astype(np.float32)
        head = {"data_vs_data_mmd": float(np.sqrt(max(float(floor_mmd2), 0.0))),
                "data_vs_data_sliced_wasserstein": float(floor_sw)}
        if name == "gaussian_mixture":
            mix = true_mixture(raw)
            head["nll_true"] = float(-jnp.mean(mix.logpdf(x_test)))
            oracle = log_likelihood(sde, mix.score_fn(sde), x_test, jax.random.key(0), divergence="exact",
                                    eps=config.likelihood_eps, solver=config.likelihood_solver,
                                    num_steps=int(config.likelihood_steps))
            head["nll_exact_score_ode"] = float(-jnp.mean(oracle))
        for i, gpoint in enumerate(res.grid):
            p = jax.tree.map(lambda a: jnp.asarray(a[i]), res.params)
            seed = int(gpoint["seed"])
            k_ll, k_grid, k_sample, k_metric = jax.random.split(jax.random.fold_in(jax.random.key(seed), di), 4)
            nll = float(-jnp.mean(apply_ll(p, x_test, k_ll)))
            logp_grid = np.asarray(apply_ll(p, jnp.asarray(pts), k_grid))
            metrics[f"{name}/seed{seed}/logp_grid"] = logp_grid.astype(np.float32)
            head[f"nll_seed{seed}"] = nll
            for si, m in enumerate(samplers):
                xs = sample_fns[m](p, jax.random.fold_in(k_sample, si))
                finite = bool(jnp.all(jnp.isfinite(xs)))
                d2, sw = metric_fn(jnp.where(jnp.isfinite(xs), xs, 0.0)[:n_metric], m_test, jax.random.fold_in(k_metric, si))
                row = {"dataset": name, "sde": config.sde, "sampler": m, "seed": seed,
                       "learning_rate": gpoint["learning_rate"], "diverged": bool(res.diverged[i]) or not finite,
                       "final_train_loss": float(res.metrics["train_loss"][i, -1]),
                       "final_test_loss": float(res.metrics["test_loss"][i, -1]),
                       "mmd2": float(d2), "mmd": float(np.sqrt(max(float(d2), 0.0))),
                       "sliced_wasserstein": float(sw), "nll": nll}
                runs.append(row)
                metrics[f"{name}/seed{seed}/{m}/samples"] = np.asarray(xs[:1000], np.float32)
                print(f"  seed {seed} {m:>15}: mmd {row['mmd']:.4f}  SW {row['sliced_wasserstein']:.4f}  "
                      f"nll {nll:.3f}")
                if i == 0 and m == config.plot_sampler:
                    fg, fpts = grid_points(LIMITS.get(name, (-4.0, 4.0)), 17)
                    fscore = score_at(p, jnp.asarray(fpts), jnp.full((len(fpts),), config.field_time, jnp.float32))
                    panels.append({"name": name, "sampler": m, "data": data.x_test, "samples": np.asarray(xs),
                                   "field_points": fpts, "field_scores": np.asarray(fscore),
                                   "logp_grid": logp_grid, "ref_logp_grid": ref_grid, "nll": nll,
                                   "ref_label": "true density" if name == "gaussian_mixture" else "KDE of the data"})
        headline[name] = head
        for m in samplers:
            vals = [r for r in runs if r["dataset"] == name and r["sampler"] == m]
            head[f"mmd_{m}"] = float(np.mean([r["mmd"] for r in vals]))
            head[f"sliced_wasserstein_{m}"] = float(np.mean([r["sliced_wasserstein"] for r in vals]))
        head["nll"] = float(np.mean([head[f"nll_seed{int(gp['seed'])}"] for gp in res.grid]))

    if panels:
        run_dir.figure("score_toy.png", overview_figure(panels, grid_axes, float(config.field_time)))
    flat_head = {f"{name}_{k}": v for name, h in headline.items() for k, v in h.items()}
    metrics["steps"] = res.steps
    results.write_results(run_dir, config, "score_toy", _conventions(config, train_conventions), runs,
                          flat_head, metrics)
    return flat_head
