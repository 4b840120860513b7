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

from dl_course import data as data_lib
from dl_course import results
from dl_course.data.toy_densities import (
    density_only,
    grid_points,
    reference_logpdf,
    true_mixture,
)
from dl_course.generative import (
    ScoreMLP,
    get_sde,
    log_likelihood,
    make_score_fn,
    make_task,
    mmd2,
    sample,
    sliced_wasserstein,
)
from dl_course.plotting.generative import score_model_overview
from dl_course.train import sweep

#: Plot ranges per dataset (the data's default scales: mixture radius 4, roll scale 0.25).
LIMITS = {"gaussian_mixture": (-5.5, 5.5), "swiss_roll": (-3.5, 4.0), "moons": (-1.7, 2.7)}


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
                        f"Langevin corrector, snr {config.pc_snr}); ode: probability-flow ODE, adaptive Dopri5 "
                        "(rtol = atol = 1e-5); "
                        "no final denoising step",
            "reference_density": "gaussian_mixture: exact; others: Gaussian KDE (Scott) of 50000 fresh draws"}


def run(config, run_dir: results.RunDir) -> dict:
    """Train one score model per (dataset, seed), sample with every sampler, evaluate, plot."""
    sde = get_sde(config.sde, **config.sde_options.to_dict())
    t = config.train
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
        options = dict(t.dataset_options.to_dict())
        raw = data_lib.load(name, **options)
        data = density_only(raw)
        res = sweep(t, task=task, data=data, progress=False)
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
                d2, sw = metric_fn(jnp.where(jnp.isfinite(xs), xs, 0.0)[:n_metric], m_test,
                                   jax.random.fold_in(k_metric, si))
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
                    _, fpts = grid_points(LIMITS.get(name, (-4.0, 4.0)), 17)
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
        run_dir.figure("score_toy.png", score_model_overview(panels, grid_axes, float(config.field_time), LIMITS))
    flat_head = {f"{name}_{k}": v for name, h in headline.items() for k, v in h.items()}
    metrics["steps"] = res.steps
    results.write_results(run_dir, config, "score_toy", _conventions(config, train_conventions), runs,
                          flat_head, metrics)
    return flat_head
