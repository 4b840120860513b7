"""A score-based model of 8x8 digits judged against simple density baselines and real data (Song
et al. 2021, ICLR; Song, Durkan, Murray & Ermon 2021, NeurIPS).

Orchestration only; every piece lives in ``dl_course.generative``:

* data: the digits (``K = 17`` levels, stored as ``k / 16``), optionally centre-cropped to
  ``crop x crop`` pixels (tests), rescaled to ``[low, high]``. The test images are dequantised
  uniformly ONCE (one fixed key) for the continuous baselines; every number of the table is an
  upper bound on (the histogram's: equal to) the discrete negative log-likelihood of the same test
  images in bits/dim (Theis et al. 2016).
* ``dequantization="gaussian"`` (default): the score model is trained on the grid images for
  ``t >= eps`` and scored by ``generative.discrete_bound`` (forward kernel at ``eps`` with
  ``std / alpha = decoder_ratio`` level spacings, PF-ODE from ``eps``, per-pixel level decoder;
  Ho et al. 2020, Kingma et al. 2021); ``base_score="histogram"``: the network corrects the exact
  score of the diffused per-pixel histogram (``FactorizedMixture.level_histogram``).
  ``dequantization="uniform"``: trained on ``dequantized_copies`` uniformly dequantised copies,
  scored by the PF-ODE density of the dequantised test array (``bits_per_dim``), as Song et al.
* training: the engine (``dl_course.train.sweep``) with ``generative.make_task`` (continuous-time
  DSM, ``loss_options``: likelihood weighting with importance sampling of ``t`` by default) and the
  weight EMA hook (``generative.ema_hook``); samples and likelihoods use the EMA weights.
* likelihood: ``generative.likelihood`` (probability-flow ODE, adaptive Dopri5, ``rtol``/``atol``,
  Hutchinson divergence); the mean NFE and the solver's success are reported.
* baselines: ``generative.baseline_bits_per_dim`` (per-pixel histogram, full-covariance Gaussian,
  GMM, PCA-Gaussian, uniform) on the same arrays.
* samples: ``generative.sample`` (Tweedie-denoised, clipped to the data range), judged by
  ``generative.sample_quality_report``: a logistic-regression digits classifier fitted on the real
  training images (class histogram, mean max-probability) and nearest-training-neighbour distances,
  samples vs real test images.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import data as data_lib
from dl_course import results
from dl_course.data.dataset import make_dataset
from dl_course.data.generative_images import dequantized_training_set, rescaled
from dl_course.generative import (
    baseline_bits_per_dim,
    dequantize,
    ema_hook,
    fit_digits_classifier,
    get_score_net,
    get_sde,
    make_task,
    sample_quality_report,
)
from dl_course.generative.feature_scores import (
    confidence_references,
    feature_distances,
    fit_feature_net,
    reference_distances,
    sample_scores,
)
from dl_course.generative.level_models import check_choices, level_score_model
from dl_course.plotting.generative import (
    bits_per_dim_bars,
    nearest_neighbour_pairs,
    per_image_bits_figure,
    sample_grid,
)
from dl_course.plotting.generative_families import family_samples_figure
from dl_course.train import sweep


def center_crop(data: data_lib.Dataset, size: int) -> data_lib.Dataset:
    """The central ``size x size`` pixels of every image (``size = 0``: unchanged)."""
    if not size:
        return data
    h, w = data.x_train.shape[1:3]
    r, c = (h - size) // 2, (w - size) // 2
    crop = lambda x: np.asarray(x)[:, r:r + size, c:c + size]
    return make_dataset(crop(data.x_train), data.y_train, crop(data.x_test), data.y_test, data.num_classes,
                        data.name, {**data.info, "center_crop": size})


def sampler_specs(config) -> dict:
    """Name -> ``LevelScoreModel.samples`` options: the default (``config.sampler`` with
    ``sample_steps`` and ``sampler_options``) first, then ``config.compare_samplers``."""
    specs = {str(config.sampler): {"method": str(config.sampler), "num_steps": int(config.sample_steps),
                                   **config.sampler_options.to_dict()}}
    for name, spec in config.compare_samplers.to_dict().items():
        if name in specs:
            raise ValueError(f"compare_samplers.{name} repeats the default sampler's name")
        specs[name] = {"num_steps": int(config.sample_steps), **spec}
    return specs


def _judge_sampler(draw, params, key, num_keys: int, low, high, classifier, feature_net, raw):
    """``num_keys`` sample sets of one sampler (keys ``fold_in(key, j)``), each judged by
    ``sample_scores`` against the test images and by the Frechet distance to the training images (the
    validation criterion that picks the default sampler: it never looks at the test set). Returns the
    mean of every number with the std over the sets (``<name>_std``) and the first set's images in [0, 1]."""
    rows, first = [], None
    for j in range(num_keys):
        xs, nfe = draw(params, jax.random.fold_in(key, j))
        xs = np.asarray(xs)
        x01 = np.clip((np.nan_to_num(xs) - low) / (high - low), 0.0, 1.0)
        first = x01 if first is None else first
        q = sample_scores(classifier, feature_net, x01, raw.x_test, raw.x_train)
        q["validation_frechet_distance"] = feature_distances(feature_net, x01, raw.x_train)["frechet_distance"]
        q["nfe"] = float(nfe)
        q["finite"] = bool(np.all(np.isfinite(xs)))
        rows.append(q)
    keys = [k for k, v in rows[0].items() if isinstance(v, float)]
    out = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    out.update({f"{k}_std": float(np.std([r[k] for r in rows], ddof=1)) if num_keys > 1 else 0.0 for k in keys
                if k != "nfe"})
    out["finite"] = all(r["finite"] for r in rows)
    out["class_histogram"] = np.round(np.mean([r["class_histogram"] for r in rows], 0), 4).tolist()
    return out, first


def run(config, run_dir: results.RunDir) -> dict:
    """Train, score (model and baselines), sample, judge the samples; write figures and summaries."""
    check_choices(config.dequantization, config.base_score)
    t = config.train
    low, high, levels = float(config.low), float(config.high), int(config.num_levels)
    gaussian = config.dequantization == "gaussian"
    raw = center_crop(data_lib.load(t.dataset, **t.dataset_options.to_dict()), int(config.crop))
    if raw.x_train.ndim != 4:
        raise ValueError(f"score_digits expects image data [n, H, W, C]; {raw.name} has shape {raw.x_train.shape}")
    data = rescaled(raw, low, high)
    if int(config.dequantized_copies) > 0 and not gaussian:
        data = dequantized_training_set(data, int(config.dequantized_copies), levels, low, high)
    sde = get_sde(config.sde, **config.sde_options.to_dict())
    model = get_score_net(config.net, **config.net_options.to_dict())
    lm = level_score_model(model.apply, sde, data.x_train, levels, low, high, dequantization=config.dequantization,
                           decoder_ratio=float(config.decoder_ratio), base_score=config.base_score,
                           uniform_eps=float(config.likelihood_eps), correction_scale=str(config.correction_scale),
                           correction_bound=float(config.correction_bound))
    eps, base = lm.eps, lm.base
    loss_options = config.loss_options.to_dict()
    if gaussian:   # train on [eps, T]: the model is decoded at eps
        loss_options["eps"] = eps
    task = make_task(model, sde, base=base, correction_scale=lm.correction_scale,
                     correction_bound=lm.correction_bound, **loss_options)
    hooks = {"ema": ema_hook(float(config.ema_decay))} if float(config.ema_decay) > 0 else None
    res = sweep(t, task=task, data=data, hooks=hooks, checkpoint_dir=run_dir.checkpoint_dir, resume=run_dir.resume,
                progress=True)
    print(f"trained {len(res.grid)} run(s): final train loss {np.round(res.metrics['train_loss'][:, -1], 4).tolist()}, "
          f"{res.timing['total_s']:.0f}s")
    weights = res.state.extras["ema"].average if hooks else res.params

    n_eval = int(config.bpd_examples) or len(data.x_test)
    x_eval = dequantize(jax.random.key(int(config.dequantization_seed)), jnp.asarray(data.x_test[:n_eval]),
                        levels, low, high)
    dims = int(np.prod(data.input_shape))
    baseline_train = data.x_train
    if gaussian:   # the continuous baselines need dequantised training images (a grid has zero-variance pixels)
        copies = max(int(config.dequantized_copies), 1)
        baseline_train = dequantized_training_set(data, copies, levels, low, high).x_train
    baselines = baseline_bits_per_dim(baseline_train, np.asarray(x_eval), levels, low, high,
                                      names=list(config.baselines), options=config.baseline_options.to_dict())
    print("baselines (test bits/dim): " + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()))
    classifier = fit_digits_classifier(raw.x_train, raw.y_train, raw.x_test, raw.y_test)
    feature_net = fit_feature_net(raw.x_train, raw.y_train, raw.x_test, raw.y_test,
                                  hidden=tuple(config.feature_net.hidden), seed=int(config.feature_net.seed))
    num_samples = int(config.num_samples)
    references = reference_distances(feature_net, raw.x_train, raw.x_test, num_samples)
    ode_options = dict(solver=str(config.likelihood_solver), rtol=float(config.rtol), atol=float(config.atol),
                       max_steps=int(config.max_steps), divergence=str(config.divergence),
                       num_probes=int(config.num_probes))
    draws = int(config.bound_draws)
    shape = (num_samples,) + data.input_shape
    x_grid = jnp.asarray(data.x_test[:n_eval])
    samplers = sampler_specs(config)

    @jax.jit
    def likelihood_of(params, key):
        if gaussian:
            return lm.test_bound_draws(params, key, x_grid, num_draws=draws, **ode_options)
        bpd, nfe, ok = lm.test_bits_per_dim(params, key, x_grid, x_eval, **ode_options)
        return bpd, jnp.full_like(bpd, jnp.nan), bpd, nfe, ok

    runs, metrics = [], {"steps": res.steps, **res.metrics}
    for i, g in enumerate(res.grid):
        params = jax.tree.map(lambda a: jnp.asarray(a[i]), weights)
        k_s, k_b = jax.random.split(jax.random.key(int(g["seed"])))
        per_sampler, images = {}, {}
        for name, spec in samplers.items():
            draw = jax.jit(lambda p, k, spec=spec: lm.samples(p, k, shape, return_nfe=True, **spec))
            per_sampler[name], images[name] = _judge_sampler(draw, params, k_s, int(config.sample_seeds), low, high,
                                                             classifier, feature_net, raw)
        default = per_sampler[config.sampler]
        xs01 = images[config.sampler]
        bpd, stderr, one_draw, nfe, ok = (np.asarray(a) for a in likelihood_of(params, k_b))
        quality = sample_quality_report(classifier, xs01, raw.x_test, raw.x_train)
        quality["samples"]["mean_confidence"] = quality["samples"]["mean_max_probability"]
        row = {"seed": int(g["seed"]), "learning_rate": g["learning_rate"],
               "diverged": bool(res.diverged[i]) or not default["finite"],
               "final_train_loss": float(res.metrics["train_loss"][i, -1]),
               "final_test_loss": float(res.metrics["test_loss"][i, -1]),
               "bits_per_dim": float(np.mean(bpd)),
               "bits_per_dim_stderr": float(np.std(bpd, ddof=1) / np.sqrt(len(bpd))),
               "bits_per_dim_median": float(np.median(bpd)), "bits_per_dim_max": float(np.max(bpd)),
               "per_image_stderr_median": float(np.nanmedian(stderr)), "per_image_stderr_max": float(np.nanmax(stderr))
               if draws > 1 else None,
               "one_draw": {"mean": float(np.mean(one_draw)), "median": float(np.median(one_draw)),
                            "max": float(np.max(one_draw))},
               "mean_nfe": float(np.mean(nfe)), "max_nfe": int(np.max(nfe)), "ode_success": bool(np.all(ok)),
               "samples": quality["samples"], "real_test": quality["real"],
               "nn_distance_ratio": quality["nn_distance_ratio"], "samplers": per_sampler}
        runs.append(row)
        metrics[f"seed{g['seed']}/samples"] = xs01.astype(np.float32)
        for name, x in images.items():
            metrics[f"seed{g['seed']}/samples_{name}"] = x.astype(np.float32)
        metrics[f"seed{g['seed']}/bits_per_dim_per_example"] = bpd.astype(np.float32)
        metrics[f"seed{g['seed']}/bits_per_dim_stderr_per_example"] = stderr.astype(np.float32)
        metrics[f"seed{g['seed']}/bits_per_dim_one_draw_per_example"] = one_draw.astype(np.float32)
        metrics[f"seed{g['seed']}/nfe_per_example"] = np.asarray(nfe).astype(np.float32)
        print(f"seed {g['seed']}: test bits/dim {row['bits_per_dim']:.3f} +- {row['bits_per_dim_stderr']:.3f} "
              f"(median {row['bits_per_dim_median']:.3f}, max {row['bits_per_dim_max']:.3f}; "
              f"{draws} draw(s) per image; "
              f"one draw: max {row['one_draw']['max']:.3f}; mean NFE {row['mean_nfe']:.0f}, "
              f"solver ok {row['ode_success']})")
        for name, q in per_sampler.items():
            print(f"  sampler {name:<16s} NFE {q['nfe']:5.0f}: confidence {q['mean_confidence']:.3f}, Frechet "
                  f"{q['frechet_distance']:.2f} +- {q['frechet_distance_std']:.2f} "
                  f"(validation {q['validation_frechet_distance']:.2f}), "
                  f"KID {q['kernel_inception_distance']:.3f}, class KL {q['class_histogram_kl']:.3f}")
        if i == 0:
            title = f"{config.net} on {raw.name} ({config.sampler}, NFE {default['nfe']:.0f}, EMA weights)"
            run_dir.figure("samples.png", sample_grid(xs01[:64], nrow=8, title=title))
            run_dir.figure("samplers.png", family_samples_figure(
                {f"{n} (NFE {per_sampler[n]['nfe']:.0f})": x[:64] for n, x in images.items()}))
            run_dir.figure("test_images.png", sample_grid(np.asarray(raw.x_test[:64]), nrow=8,
                                                          title=f"{raw.name}: test images"))
            run_dir.figure("nearest_neighbours.png", nearest_neighbour_pairs(xs01[:16], raw.x_train))
            run_dir.figure("bits_per_dim_per_image.png", per_image_bits_figure(
                bpd, stderr, one_draw, title=f"per-image test bits/dim, mean of {draws} draw(s) of the bound"))

    good = [r for r in runs if not r["diverged"]] or runs
    first = good[0]
    bpd_model = float(np.mean([r["bits_per_dim"] for r in good]))
    run_dir.figure("bits_per_dim.png", bits_per_dim_bars(
        {f"score model ({config.net})": bpd_model, **baselines},
        title=f"test bits/dim (discrete NLL bounds), {raw.name} ({dims} dims, {levels} levels)"))
    by_sampler = {n: {k: float(np.mean([r["samplers"][n][k] for r in good]))
                      for k in first["samplers"][n] if k != "finite"} for n in samplers}
    best_val = min(by_sampler, key=lambda n: by_sampler[n]["validation_frechet_distance"])
    real_conf = first["real_test"]["mean_max_probability"]
    headline = {
        "bits_per_dim": bpd_model,
        "bits_per_dim_stderr": first["bits_per_dim_stderr"],
        "bits_per_dim_median": first["bits_per_dim_median"],
        "median_bits_per_dim": first["bits_per_dim_median"],
        "max_bits_per_dim": first["bits_per_dim_max"],
        "bound_draws": draws,
        "per_image_stderr": {"median": first["per_image_stderr_median"], "max": first["per_image_stderr_max"]},
        "one_draw_bits_per_dim": first["one_draw"],
        "tail_targets": {"max_le_2x_median": bool(first["bits_per_dim_max"] <= 2 * first["bits_per_dim_median"]),
                         "mean_le_median_plus_0.05": bool(bpd_model <= first["bits_per_dim_median"] + 0.05)},
        "baselines": baselines,
        "best_baseline": min((k for k in baselines if k != "uniform"), key=baselines.get),
        "beats_every_baseline": bool(all(bpd_model < v for v in baselines.values())),
        "dequantization": str(config.dequantization), "base_score": str(config.base_score),
        "ode": {"solver": ode_options["solver"], "rtol": ode_options["rtol"], "atol": ode_options["atol"],
                "divergence": ode_options["divergence"],
                "eps": eps, "mean_nfe": float(np.mean([r["mean_nfe"] for r in good])),
                "all_succeeded": bool(all(r["ode_success"] for r in good))},
        "default_sampler": str(config.sampler), "best_sampler_on_validation": best_val,
        "samplers": by_sampler,
        "frechet_distance": {n: v["frechet_distance"] for n, v in by_sampler.items()},
        "kernel_inception_distance": {n: v["kernel_inception_distance"] for n, v in by_sampler.items()},
        "frechet_distance_train_vs_test": references["train_vs_test"]["frechet_distance"],
        "frechet_distance_shuffled_test": references["shuffled_test_vs_test"]["frechet_distance"],
        "kernel_inception_distance_train_vs_test": references["train_vs_test"]["kernel_inception_distance"],
        "kernel_inception_distance_shuffled_test": references["shuffled_test_vs_test"]["kernel_inception_distance"],
        "feature_references": references,
        "sample_targets": {"mean_confidence_ge_0.85": bool(by_sampler[config.sampler]["mean_confidence"] >= 0.85),
                           "frechet_le_2x_train_vs_test": bool(by_sampler[config.sampler]["frechet_distance"]
                                                               <= 2 * references["train_vs_test"]["frechet_distance"])},
        "classifier": {"mean_confidence": by_sampler[config.sampler]["mean_confidence"],
                       "real_mean_confidence": real_conf,
                       "samples": {k: first["samples"][k] for k in ("class_histogram", "mean_max_probability",
                                                                    "mean_confidence")},
                       "real": {k: first["real_test"][k] for k in ("class_histogram", "mean_max_probability")},
                       "test_accuracy": classifier.test_accuracy,
                       "references": confidence_references(classifier, raw.x_train, raw.x_test, levels)},
        "feature_net_test_accuracy": feature_net.test_accuracy,
        "nearest_neighbour": {"samples_median": first["samples"]["median_nn_distance"],
                              "test_median": first["real_test"]["median_nn_distance"],
                              "ratio": first["nn_distance_ratio"]},
        "num_levels": levels, "num_dims": dims, "num_runs": len(runs),
        "num_diverged": int(sum(r["diverged"] for r in runs)), "train_seconds": res.timing["total_s"]}
    conventions = {
        **res.conventions,
        "task": f"continuous-time denoising score matching {loss_options} on t in [{eps:.3g}, T], eps-parameterized "
                f"{config.net} {dict(config.net_options)}"
                + (" correcting the exact score of the diffused per-pixel histogram (add-1 smoothing; correction "
                   f"times {config.correction_scale}(t), raw output bound {config.correction_bound:g} (0: none))"
                   if base else ""),
        "sde": f"{config.sde} {dict(config.sde_options)}",
        "weights": (f"EMA of the weights, decay {config.ema_decay} (debiased), for samples and likelihoods"
                    if hooks else "the final weights"),
        "data": f"{raw.name}" + (f", central {config.crop}x{config.crop} crop" if int(config.crop) else "")
                + f", pixels in [0, 1] rescaled to [{low:g}, {high:g}]",
        "dequantization": (f"score model: Gaussian, the VP/VE kernel at t = {eps:.4g} (std/alpha = "
                           f"{config.decoder_ratio:g} level spacings; {draws} independent draw(s) per test image, "
                           "averaged), per-pixel "
                           "uniform-prior level decoder (generative.discrete_bound); trained on the grid images"
                           if gaussian else
                           f"score model: uniform, trained on {config.dequantized_copies} fixed dequantised copies")
                          + f"; continuous baselines: uniform, fitted on {max(int(config.dequantized_copies), 1)} "
                          f"dequantised copies, scored on the test images dequantised once (key "
                          f"{config.dequantization_seed}); {levels} levels",
        "bits_per_dim": f"test set ({n_eval} images), every number an upper bound on (histogram: equal to) the "
                        f"discrete NLL in bits/dim; PF-ODE from t = {eps:.4g} to T, {config.likelihood_solver} rtol = "
                        f"{config.rtol:g}, atol = {config.atol:g}, "
                        + (f"{config.divergence} divergence" + (f" ({config.num_probes} Rademacher probe(s) per draw)"
                                                               if config.divergence == "hutchinson" else "")
                           + f"; per image the mean of {draws} draw(s) of (z, probes), per-image standard error = std "
                           "of the draws / sqrt(draws); max / median over the per-image means"),
        "baselines": f"fitted on the dequantised training copies, scored on the same dequantised test array; options "
                     f"{dict(config.baseline_options)}; uniform = log2({levels})",
        "samples": f"{config.num_samples} samples per set, {config.sample_seeds} sets (keys) per sampler; default "
                   f"{config.sampler} {dict(config.sampler_options)} ({config.sample_steps} steps where fixed-step), "
                   f"compared: {config.compare_samplers.to_dict()}; "
                   + ("down to the decoding time (or stop_ratio's time), then the decoder's most probable levels or "
                      "(denoise) Tweedie's E[x0 | x] rounded to the nearest level" if gaussian
                      else "Tweedie denoising at the end, clipped to [0, 1]")
                   + "; the default picked by the Frechet distance to the TRAINING images (validation criterion), "
                   "never the test set",
        "classifier": "sklearn multinomial logistic regression (C = 1) on the real [0, 1] training images; "
                      "mean_confidence = its mean max-probability (references: on real train / test images and "
                      "on corrupted test images decoded to the levels, generative.feature_scores."
                      "confidence_references); class_histogram_kl = KL(samples' predicted-class "
                      "histogram || the real test images')",
        "features": f"penultimate layer of an sklearn MLP classifier {tuple(config.feature_net.hidden)} (ReLU, seed "
                    f"{config.feature_net.seed}) on the real training images (generative.feature_scores); Frechet "
                    "distance and unbiased KID (cubic kernel) of each sample set against the 450 test images; "
                    f"references at {config.num_samples} images: training images vs test, pixel-shuffled test images "
                    "vs test (4 draws each)",
        "nearest_neighbour": "Euclidean distance in [0, 1] pixels to the nearest real training image; median over "
                             "samples vs over real test images"}
    results.write_results(run_dir, config, "score_digits", conventions, runs, headline, metrics)
    return headline
