"""Three families of deep generative models on the same images and the same split: a score-based
model (Song et al. 2021), a VAE (Kingma & Welling 2014) and a RealNVP flow (Dinh et al. 2017), next
to simple density baselines; every bits/dim an upper bound on the same discrete NLL (Theis et al.
2016).

Each family is a ``Task`` trained by ``dl_course.train.sweep`` (vmapped over ``config.train.seeds``):
``generative.make_task`` (denoising score matching; by default on the grid images for ``t >= eps``
with the diffused per-pixel histogram as base score), ``make_vae_task`` (the beta-ELBO),
``make_flow_task`` (exact maximum likelihood on freshly dequantised batches). Then, per run:

* test bits/dim of the same test images: the score model by the discrete bound of
  ``generative.discrete_bound`` (Gaussian dequantisation by the forward kernel at the decoding time,
  the probability-flow ODE likelihood with an adaptive solver and Hutchinson divergence -- solver,
  tolerances and NFE recorded --, a per-pixel level decoder; with ``score.dequantization="uniform"``
  the PF-ODE density of the shared uniformly dequantised test images instead); the flow exactly on
  the shared uniformly dequantised test images (``dequantize`` with one fixed key); the VAE
  (categorical decoder over the K levels: a bound on the *discrete* likelihood) by the ELBO and the
  IWAE-k bound (Burda et al. 2016);
* the baselines of ``generative.baselines`` (per-pixel histogram, Gaussian, GMM, PPCA, uniform)
  fitted to one dequantised copy of the training images and scored on the same dequantised test
  images;
* sample quality (``generative.sample_quality``): a logistic-regression digits classifier's class
  histogram and mean max-probability on the samples vs on the real test images, and the median
  distance of every sample to its nearest training image next to the real test images' (a
  memorisation check);
* the VAE's rate-distortion curve: one sweep vmapped over ``beta`` (a grid key of the VAE's Task;
  beta = 1 is the main VAE sweep), test rate ``KL(q(z|x) || p(z))`` and distortion
  ``-E_q log p(x|z)`` in nats (Alemi et al. 2018).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import data as data_lib
from dl_course import results
from dl_course.data.generative_images import rescaled
from dl_course.generative import (
    baseline_bits_per_dim,
    dequantize,
    dequantized_task,
    ema_hook,
    ema_params,
    fit_digits_classifier,
    get_score_net,
    get_sde,
    label_statistics,
    make_task,
    nearest_neighbour_distances,
)
from dl_course.generative.family_fits import (
    family_train_config,
    flow_family,
    images01,
    pooled_levels,
    rate_distortion,
    timed_sweep,
    vae_family,
)
from dl_course.generative.feature_scores import (
    fit_feature_net,
    reference_distances,
    sample_scores,
)
from dl_course.generative.level_models import check_choices, level_score_model
from dl_course.plotting.generative import per_image_bits_figure
from dl_course.plotting.generative_families import (
    family_samples_figure,
    rate_distortion_figure,
)

FAMILIES = ("score", "vae", "flow")


def _score_family(config, raw, x_test_u, run_dir, shape):
    """Train the score model and score it on the test images. ``score.dequantization="gaussian"``
    (default): trained on the grid images for ``t >= eps``, the network correcting the diffused
    per-pixel histogram (``score.base_score``), bits/dim by the discrete bound of
    ``generative.discrete_bound`` (decoded at ``std/alpha = decoder_ratio`` level spacings);
    ``"uniform"``: trained on freshly dequantised batches (``dequantized_task``), bits/dim by the
    PF-ODE density of the shared dequantised test images (in the model's ``[low, high]`` scale).
    Samples are mapped back to ``[0, 1]``."""
    c, levels = config.score, int(config.num_levels)
    low, high = float(c.low), float(c.high)
    gaussian = c.dequantization == "gaussian"
    data = rescaled(raw, low, high)
    sde = get_sde(c.sde, **c.sde_options.to_dict())
    model = get_score_net(c.net, **c.net_options.to_dict())
    lk = c.likelihood.to_dict()
    lk.setdefault("divergence", "hutchinson")
    lm = level_score_model(model.apply, sde, data.x_train, levels, low, high, dequantization=c.dequantization,
                           decoder_ratio=float(c.decoder_ratio), base_score=c.base_score, uniform_eps=lk.pop("eps"),
                           correction_scale=str(c.correction_scale),
                           correction_bound=float(c.correction_bound), prefix="score.")
    loss_options = c.loss_options.to_dict()
    if gaussian:
        loss_options["eps"] = lm.eps
        task = make_task(model, sde, base=lm.base, correction_scale=lm.correction_scale,
                         correction_bound=lm.correction_bound, **loss_options)
    else:
        task = dequantized_task(make_task(model, sde, **loss_options), levels, low, high)
    hooks = {"ema": ema_hook(float(c.ema_decay))} if float(c.ema_decay) > 0 else None
    res, seconds = timed_sweep(family_train_config(config, "score"), task, data, run_dir, "score model", hooks)
    stacked = ema_params(res.state.extras["ema"]) if hooks else res.params
    x_eval = jnp.asarray(low + (high - low) * x_test_u)           # the same points, in the model's scale
    x_grid = jnp.asarray(data.x_test)

    draws = int(c.bound_draws)

    @jax.jit
    def bpd_of(params, key):
        if gaussian:
            return lm.test_bound_draws(params, key, x_grid, num_draws=draws, **lk)
        bpd, nfe, ok = lm.test_bits_per_dim(params, key, x_grid, x_eval, **lk)
        return bpd, jnp.full_like(bpd, jnp.nan), bpd, nfe, ok

    @jax.jit
    def samples_of(params, key):
        return lm.samples(params, key, shape, method=c.sampler, num_steps=int(c.sample_steps), return_nfe=True,
                          **c.sampler_options.to_dict())

    out = []
    for i, g in enumerate(res.grid):
        params = jax.tree.map(lambda a: jnp.asarray(a[i]), stacked)
        k_l, k_s = jax.random.split(jax.random.fold_in(jax.random.key(int(g["seed"])), 1))
        bpd, stderr, one_draw, nfe, ok = (np.asarray(v) for v in bpd_of(params, k_l))
        xs, sample_nfe = samples_of(params, k_s)
        out.append({"bpd": bpd, "stderr": stderr, "one_draw": one_draw, "samples": images01(xs, low, high),
                    "extra": {"nfe_mean": float(nfe.mean()), "nfe_max": int(nfe.max()),
                              "solver_success": bool(ok.all()),
                              "sample_nfe": float(sample_nfe), "bound_draws": draws,
                              "per_image_stderr_median": float(np.nanmedian(stderr)) if draws > 1 else None,
                              "per_image_stderr_max": float(np.nanmax(stderr)) if draws > 1 else None,
                              "one_draw_bits_per_dim_max": float(one_draw.max())}})
    return res, seconds, out


def run(config, run_dir: results.RunDir) -> dict:
    """Train the three families, evaluate bits/dim, baselines, sample quality and the VAE's rate-
    distortion curve; write the tables' numbers, the figures and the summaries."""
    check_choices(config.score.dequantization, config.score.base_score, prefix="score.")
    t, levels = config.train, int(config.num_levels)
    raw = data_lib.load(t.dataset, **t.dataset_options.to_dict())
    if raw.x_train.ndim != 4:
        raise ValueError(f"generative_models expects image data [n, H, W, C]; {raw.name} has {raw.x_train.shape}")
    n_eval = int(config.bpd_examples) or len(raw.x_test)
    raw = pooled_levels(data_lib.make_dataset(raw.x_train, raw.y_train, raw.x_test[:n_eval], raw.y_test[:n_eval],
                                        raw.num_classes, raw.name, raw.info), int(config.pool), levels)
    dims = int(np.prod(raw.input_shape))
    k_test, k_train = jax.random.split(jax.random.key(int(config.eval_seed)))
    x_test_u = np.asarray(dequantize(k_test, jnp.asarray(raw.x_test), levels, 0.0, 1.0))   # shared by all
    x_train_u = np.asarray(dequantize(k_train, jnp.asarray(raw.x_train), levels, 0.0, 1.0))
    baselines = baseline_bits_per_dim(x_train_u, x_test_u, levels, names=list(config.baselines) + ["uniform"],
                                      options=config.baseline_options.to_dict())
    print("baselines (test bits/dim): " + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()), flush=True)
    num_samples = int(config.num_samples)
    shape = (num_samples,) + raw.input_shape

    trained = {"score": _score_family(config, raw, x_test_u, run_dir, shape),
               "vae": vae_family(config, raw, run_dir, num_samples),
               "flow": flow_family(config, raw, x_test_u, run_dir, num_samples)}

    clf = fit_digits_classifier(raw.x_train, raw.y_train, raw.x_test, raw.y_test)
    feature_net = fit_feature_net(raw.x_train, raw.y_train, raw.x_test, raw.y_test,
                                  hidden=tuple(config.feature_net.hidden), seed=int(config.feature_net.seed))
    references = reference_distances(feature_net, raw.x_train, raw.x_test, num_samples)
    real_stats = label_statistics(clf, raw.x_test)
    test_nn = float(np.median(nearest_neighbour_distances(raw.x_test, raw.x_train)))
    runs, metrics, grids = [], {}, {}
    for fam in FAMILIES:
        res, seconds, per_run = trained[fam][:3]
        metrics[f"{fam}/steps"] = res.steps
        for k, v in res.metrics.items():
            metrics[f"{fam}/{k}"] = np.asarray(v)
        for i, (g, r) in enumerate(zip(res.grid, per_run)):
            stats = label_statistics(clf, r["samples"])
            scores = sample_scores(clf, feature_net, r["samples"], raw.x_test, raw.x_train)
            nn_d = nearest_neighbour_distances(r["samples"], raw.x_train)
            finite = bool(np.all(np.isfinite(r["bpd"]))) and bool(np.all(np.isfinite(r["samples"])))
            runs.append({"family": fam, "seed": int(g["seed"]), "learning_rate": g["learning_rate"],
                         "diverged": bool(res.diverged[i]) or not finite,
                         "final_train_loss": float(res.metrics["train_loss"][i, -1]),
                         "bits_per_dim": float(np.mean(r["bpd"])),
                         "bits_per_dim_stderr": float(np.std(r["bpd"], ddof=1) / np.sqrt(len(r["bpd"]))),
                         "bits_per_dim_median": float(np.median(r["bpd"])),
                         "class_histogram": np.round(stats["class_histogram"], 4).tolist(),
                         "mean_max_probability": stats["mean_max_probability"],
                         "mean_confidence": scores["mean_confidence"],
                         "class_histogram_kl": scores["class_histogram_kl"],
                         "frechet_distance": scores["frechet_distance"],
                         "kernel_inception_distance": scores["kernel_inception_distance"],
                         "bits_per_dim_max": float(np.max(r["bpd"])),
                         "median_nn_distance": float(np.median(nn_d)), "train_seconds": seconds, **r.get("extra", {})})
            metrics[f"{fam}/seed{g['seed']}/bits_per_dim_per_example"] = r["bpd"].astype(np.float32)
            metrics[f"{fam}/seed{g['seed']}/samples"] = r["samples"].astype(np.float32)
            for extra in ("stderr", "one_draw"):
                if extra in r:
                    metrics[f"{fam}/seed{g['seed']}/bits_per_dim_{extra}_per_example"] = r[extra].astype(np.float32)
            grids.setdefault(fam, r["samples"][:64])
    vae_rows = [r for r in runs if r["family"] == "vae"]
    beta_one = {"rate": float(np.mean([r["test_rate"] for r in vae_rows])),
                "distortion": float(np.mean([r["test_distortion"] for r in vae_rows])),
                "elbo_bits_per_dim": float(np.mean([r["elbo_bits_per_dim"] for r in vae_rows]))}
    rd = rate_distortion(config, raw, run_dir, beta_one)
    for row in rd:
        print(f"beta {row['beta']:g}: rate {row['rate']:.2f} nats, distortion {row['distortion']:.2f} nats, "
              f"ELBO {row['elbo_bits_per_dim']:.3f} bits/dim", flush=True)

    def mean_of(fam, key):
        rows = [r for r in runs if r["family"] == fam and not r["diverged"]] or [r for r in runs if r["family"] == fam]
        return float(np.mean([r[key] for r in rows]))

    def hist_of(fam):
        return np.round(np.mean([r["class_histogram"] for r in runs if r["family"] == fam], 0), 4).tolist()

    def spread_of(fam, key):
        vals = [r[key] for r in runs if r["family"] == fam and not r["diverged"]]
        return float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0

    score_rows = [r for r in runs if r["family"] == "score"]
    ftt = references["train_vs_test"]["frechet_distance"]
    max_bpd = {f: float(max(r["bits_per_dim_max"] for r in runs if r["family"] == f)) for f in FAMILIES}
    median_bpd = {f: mean_of(f, "bits_per_dim_median") for f in FAMILIES}
    headline = {
        "bits_per_dim": {f: mean_of(f, "bits_per_dim") for f in FAMILIES},
        "bits_per_dim_median": {f: mean_of(f, "bits_per_dim_median") for f in FAMILIES},
        "median_bits_per_dim": median_bpd,
        "max_bits_per_dim": max_bpd,
        "score_tail_targets": {
            "max_le_2x_median": bool(all(r["bits_per_dim_max"] <= 2 * r["bits_per_dim_median"] for r in score_rows)),
            "mean_le_median_plus_0.05": bool(all(r["bits_per_dim"] <= r["bits_per_dim_median"] + 0.05
                                                 for r in score_rows))},
        "score_bound_draws": int(config.score.bound_draws),
        "score_per_image_stderr_median": (float(np.mean([r["per_image_stderr_median"] for r in score_rows]))
                                          if int(config.score.bound_draws) > 1 else None),
        "score_one_draw_max_bits_per_dim": float(max(r["one_draw_bits_per_dim_max"] for r in score_rows)),
        "frechet_distance": {f: mean_of(f, "frechet_distance") for f in FAMILIES},
        "frechet_distance_std": {f: spread_of(f, "frechet_distance") for f in FAMILIES},
        "kernel_inception_distance": {f: mean_of(f, "kernel_inception_distance") for f in FAMILIES},
        "kernel_inception_distance_std": {f: spread_of(f, "kernel_inception_distance") for f in FAMILIES},
        "frechet_distance_train_vs_test": ftt,
        "frechet_distance_shuffled_test": references["shuffled_test_vs_test"]["frechet_distance"],
        "kernel_inception_distance_train_vs_test": references["train_vs_test"]["kernel_inception_distance"],
        "kernel_inception_distance_shuffled_test": references["shuffled_test_vs_test"]["kernel_inception_distance"],
        "feature_references": references,
        "feature_net_test_accuracy": feature_net.test_accuracy,
        "score_sample_targets": {
            "mean_confidence_ge_0.85": bool(mean_of("score", "mean_confidence") >= 0.85),
            "frechet_le_2x_train_vs_test": bool(mean_of("score", "frechet_distance") <= 2 * ftt)},
        "score_sampler": {"method": str(config.score.sampler), "options": config.score.sampler_options.to_dict(),
                          "mean_nfe": float(np.mean([r["sample_nfe"] for r in score_rows]))},
        "vae_elbo_bits_per_dim": mean_of("vae", "elbo_bits_per_dim"),
        "baselines": baselines,
        "classifier": {**{f: {"class_histogram": hist_of(f), "mean_max_probability": mean_of(f, "mean_max_probability"),
                              "mean_confidence": mean_of(f, "mean_confidence"),
                              "mean_confidence_std": spread_of(f, "mean_confidence"),
                              "class_histogram_kl": mean_of(f, "class_histogram_kl")}
                          for f in FAMILIES},
                       "real": {"class_histogram": np.round(real_stats["class_histogram"], 4).tolist(),
                                "mean_max_probability": real_stats["mean_max_probability"]}},
        "nearest_neighbour": {**{f: mean_of(f, "median_nn_distance") for f in FAMILIES}, "test": test_nn},
        "classifier_test_accuracy": clf.test_accuracy,
        "iwae_samples": int(config.vae.iwae_samples),
        "score_nfe_mean": float(np.mean([r["nfe_mean"] for r in score_rows])),
        "score_solver_success": all(r["solver_success"] for r in score_rows),
        "rate_distortion": {"beta": [r["beta"] for r in rd], "rate": [r["rate"] for r in rd],
                            "distortion": [r["distortion"] for r in rd],
                            "elbo_bits_per_dim": [r["elbo_bits_per_dim"] for r in rd]},
        "num_levels": levels, "num_test_images": len(raw.x_test), "num_runs": len(runs),
        "num_diverged": int(sum(r["diverged"] for r in runs)),
        "train_seconds": {f: trained[f][1] for f in FAMILIES},
    }
    _print_tables(headline)
    run_dir.figure("samples.png", family_samples_figure(
        {"score model": grids["score"], "VAE": grids["vae"], "RealNVP": grids["flow"], "test images": raw.x_test[:64]},
        bits_per_dim={"score model": headline["bits_per_dim"]["score"], "VAE": headline["bits_per_dim"]["vae"],
                      "RealNVP": headline["bits_per_dim"]["flow"]}))
    first_score = trained["score"][2][0]
    run_dir.figure("score_bits_per_dim_per_image.png", per_image_bits_figure(
        first_score["bpd"], first_score["stderr"], first_score["one_draw"],
        title=f"score model, seed {trained['score'][0].grid[0]['seed']}: per-image test bits/dim, mean of "
              f"{int(config.score.bound_draws)} draw(s) of the bound"))
    run_dir.figure("rate_distortion.png", rate_distortion_figure(
        headline["rate_distortion"]["beta"], headline["rate_distortion"]["rate"],
        headline["rate_distortion"]["distortion"], dims))
    sc, lk = config.score, config.score.likelihood
    conventions = {
        **trained["flow"][0].conventions,
        "data": f"{raw.name}: {len(raw.x_train)} training, {len(raw.x_test)} test images {raw.input_shape}, "
                f"{levels} pixel levels"
                + (f", {config.pool}x{config.pool} average-pooled" if int(config.pool) > 1 else ""),
        "dequantization": f"uniform, y = (k + u) / {levels}; the test images' u drawn once "
                          f"(key {int(config.eval_seed)}) "
                          "and shared by every model and baseline"
                          + ("; except the score model: Gaussian, the forward kernel at its decoding time with a "
                             "per-pixel level decoder (generative.discrete_bound), one draw per test image"
                             if sc.dequantization == "gaussian" else ""),
        "bits_per_dim": "mean over test images; upper bounds on the discrete negative log-likelihood "
                        "(Theis et al. 2016); "
                        "bits_per_dim_median: the median over test images (not a bound; robust to a few outliers)",
        "score": f"{sc.net} {dict(sc.net_options)}, {sc.sde} SDE, DSM {dict(sc.loss_options)}, pixels in [{sc.low:g}, "
                 f"{sc.high:g}], "
                 + (f"trained on the grid images for t >= the decoding time (std/alpha = {sc.decoder_ratio:g} level "
                    f"spacings), base score {sc.base_score}" if sc.dequantization == "gaussian"
                    else "trained on freshly dequantised batches")
                 + f", EMA {sc.ema_decay:g}; likelihood: PF-ODE, {lk.solver} rtol {lk.rtol:g} atol {lk.atol:g}, "
                 f"{lk.get('divergence', 'hutchinson')} divergence ({lk.num_probes} Rademacher probe(s)), per image "
                 f"the mean of {sc.bound_draws} independent draw(s) of (z, probes) with its standard error, NFE per "
                 f"example in the runs; samples: {sc.sampler} {sc.sampler_options.to_dict()} "
                 f"({sc.sample_steps} steps where fixed-step), "
                 + ("then the decoder's most probable levels (or, with denoise, Tweedie's E[x0 | x] rounded)"
                    if sc.dequantization == "gaussian" else "Tweedie denoising"),
        "vae": f"MLP {tuple(config.vae.hidden_dims)}, latent {config.vae.latent_dim}, categorical decoder over "
               f"{levels} levels, dropout {config.vae.dropout_rate:g}; bits/dim = IWAE-{config.vae.iwae_samples} "
               f"bound; ELBO averaged over {config.vae.elbo_samples} draws; samples = decoder mean of z ~ N(0, I)",
        "flow": f"RealNVP {config.flow.num_couplings} couplings {tuple(config.flow.hidden_dims)}, logit alpha "
                f"{config.flow.logit_alpha:g}, dropout {config.flow.dropout_rate:g}; exact log-likelihood",
        "baselines": "fitted to one dequantised copy of the training images (generative.baselines)",
        "classifier": "multinomial logistic regression on real [0, 1] training images (sample_quality); "
                      "mean_confidence = mean max-probability of the samples; class_histogram_kl = KL(samples' "
                      "predicted-class histogram || the test images')",
        "features": f"penultimate layer of an sklearn MLP classifier {tuple(config.feature_net.hidden)} (ReLU, seed "
                    f"{config.feature_net.seed}) on the real training images (generative.feature_scores); Frechet "
                    f"distance and unbiased KID (cubic kernel) of each run's {num_samples} samples against the test "
                    f"images; references at {num_samples} images: training images vs test, pixel-shuffled test "
                    "images vs test (mean of 4 draws); spread: std over the seeds",
        "nearest_neighbour": "median Euclidean distance of each image to its nearest training image ([0, 1] pixels)",
        "rate_distortion": ("one VAE sweep over the betas != 1 (vmapped grid key); test rate KL(q(z|x)||N(0,I)) "
                            "and distortion -E_q log p(x|z), nats"),
    }
    results.write_results(run_dir, config, "generative_models", conventions, runs, headline, metrics)
    return headline


def _print_tables(h):
    print("\ntest bits/dim (lower is better; all upper bounds on the discrete NLL)")
    print(f"  score model (PF-ODE bound) {h['bits_per_dim']['score']:.3f}   (mean NFE {h['score_nfe_mean']:.0f})")
    print(f"  VAE IWAE-{h['iwae_samples']:<5d}           {h['bits_per_dim']['vae']:.3f}")
    print(f"  VAE ELBO                  {h['vae_elbo_bits_per_dim']:.3f}")
    print(f"  RealNVP (exact)           {h['bits_per_dim']['flow']:.3f}")
    for k, v in h["baselines"].items():
        print(f"  baseline {k:<16s} {v:.3f}")
    print("\nsample quality (classifier: mean max-probability, class histogram; median nearest-training distance; "
          "Frechet distance and KID in the feature net)")
    for f in FAMILIES + ("real",):
        c = h["classifier"][f]
        nn_d = h["nearest_neighbour"][f if f != "real" else "test"]
        fd = (f"  FD {h['frechet_distance'][f]:.2f} +- {h['frechet_distance_std'][f]:.2f}  KID "
              f"{h['kernel_inception_distance'][f]:.3f}" if f in FAMILIES else
              f"  FD train-vs-test {h['frechet_distance_train_vs_test']:.2f}, "
              f"shuffled {h['frechet_distance_shuffled_test']:.2f}")
        print(f"  {f:<6s} {c['mean_max_probability']:.3f}  "
              f"{np.round(c['class_histogram'], 2).tolist()}  {nn_d:.3f}{fd}")
    print("per-image bits/dim max / median: " + ", ".join(f"{f} {h['max_bits_per_dim'][f]:.2f} / "
                                                          f"{h['median_bits_per_dim'][f]:.2f}" for f in FAMILIES))
