"""A score-based model of small images (Song et al. 2021, ICLR): 8x8 digits by default, MNIST /
CIFAR-10 at paper scale.

The score network (``ScoreMLP`` on the flattened image by default, ``ScoreUNet`` as an option) is
trained by continuous-time denoising score matching through the engine (``dl_course.train.sweep``
with ``generative.make_task``) on images rescaled from ``[0, 1]`` to ``[low, high]`` (default
``[-1, 1]``, the scale of the VP prior). By default it is trained on ``dequantized_copies``
uniformly dequantised copies of the training images, the continuous density that bits/dim
evaluates (measured at the default CPU size: 4.28 bits/dim with 4 copies vs 4.33 with
``dequantized_copies=0``, both worse than the uniform model's log2(17) = 4.09: the default model
is undertrained, see the launcher). Then, per seed:

* a grid of samples (Euler-Maruyama or predictor-corrector, with the final Tweedie denoising step
  of the reference implementation), clipped to the data range for display;
* test bits/dim: uniformly dequantised test images (``K`` levels: 17 for the digits stored as
  ``k / 16``, 256 for 8-bit images), ``log p`` through the probability-flow ODE with Hutchinson's
  divergence estimator (one Rademacher probe per example, as the reference), converted by
  ``bits_per_dim`` -- an upper bound on the discrete NLL (Theis et al. 2016). The estimator of
  ``log p`` is unbiased per example, so the test mean is unbiased up to the ODE solver's error.
* a classifier-based score: a multinomial logistic regression fitted to the training images
  (scikit-learn, its test accuracy recorded) labels the samples; we report the Inception-score-style
  ``exp(E KL(p(y|x) || p(y)))`` (Salimans et al. 2016; max = number of classes), the mean confidence
  and the class entropy, next to the same numbers for real test images. This measures how
  recognisable and class-balanced the samples are; it is not an Inception score and is not
  comparable with published IS values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import data as data_lib
from dl_course import results
from dl_course.generative import (
    bits_per_dim,
    classifier_score,
    dequantize,
    get_score_net,
    get_sde,
    log_likelihood,
    make_score_fn,
    make_task,
    mmd2,
    sample,
)
from dl_course.generative.image_data import (
    dequantized_training_set,
    fit_classifier,
    rescaled,
)
from dl_course.plotting.generative import sample_grid
from dl_course.train import sweep


def _scalars(d: dict, prefix: str) -> dict:
    return {f"{prefix}{k}": float(v) for k, v in d.items() if np.ndim(v) == 0}


def run(config, run_dir: results.RunDir) -> dict:
    """Train, sample, evaluate bits/dim and the classifier score; write the grid and summaries."""
    t = config.train
    low, high, levels = float(config.low), float(config.high), int(config.num_levels)
    raw = data_lib.load(t.dataset, **t.dataset_options.to_dict())
    if raw.x_train.ndim != 4:
        raise ValueError(f"score_digits expects image data [n, H, W, C]; {raw.name} has shape {raw.x_train.shape}")
    data = rescaled(raw, low, high)
    if int(config.dequantized_copies) > 0:
        data = dequantized_training_set(data, int(config.dequantized_copies), levels, low, high)
    sde = get_sde(config.sde, **config.sde_options.to_dict())
    model = get_score_net(config.net, **config.net_options.to_dict())
    task = make_task(model, sde)
    res = sweep(t, task=task, data=data, checkpoint_dir=run_dir.checkpoint_dir, resume=run_dir.resume,
                progress=True)
    print(f"trained {len(res.grid)} run(s): final train loss {np.round(res.metrics['train_loss'][:, -1], 4).tolist()}, "
          f"{res.timing['total_s']:.0f}s")
    logits_fn, clf_acc = fit_classifier(raw)
    real = classifier_score(logits_fn, raw.x_test)
    shape = (int(config.num_samples),) + data.input_shape
    n_eval = int(config.bpd_examples) or len(data.x_test)
    x_eval = jnp.asarray(data.x_test[:n_eval])
    dims = int(np.prod(data.input_shape))

    @jax.jit
    def samples_of(params, key):
        sf = make_score_fn(model.apply, params, sde)
        return sample(sde, sf, shape, key, method=config.sampler, num_steps=int(config.sample_steps), denoise=True)

    @jax.jit
    def bpd_of(params, key):
        k_deq, k_ll = jax.random.split(key)
        x = dequantize(k_deq, x_eval, levels, low, high)
        sf = make_score_fn(model.apply, params, sde)
        lp = log_likelihood(sde, sf, x, k_ll, divergence="hutchinson", num_probes=int(config.num_probes),
                            eps=float(config.likelihood_eps), solver=config.likelihood_solver,
                            num_steps=int(config.likelihood_steps))
        return bits_per_dim(lp, dims, levels, low, high)

    runs, metrics, grids = [], {"steps": res.steps, **res.metrics}, None
    for i, g in enumerate(res.grid):
        params = jax.tree.map(lambda a: jnp.asarray(a[i]), res.params)
        k_s, k_b, k_m = jax.random.split(jax.random.key(int(g["seed"])), 3)
        xs = samples_of(params, k_s)
        finite = bool(jnp.all(jnp.isfinite(xs)))
        xs01 = np.clip((np.asarray(xs) - low) / (high - low), 0.0, 1.0)   # back to [0, 1] for the classifier
        bpd = np.asarray(bpd_of(params, k_b))
        cs = classifier_score(logits_fn, xs01)
        n_m = min(len(xs01), len(raw.x_test))
        mmd = float(mmd2(jnp.asarray(xs01[:n_m]), jnp.asarray(raw.x_test[:n_m])))
        row = {"seed": int(g["seed"]), "learning_rate": g["learning_rate"], "diverged": bool(res.diverged[i]) or not finite,
               "final_train_loss": float(res.metrics["train_loss"][i, -1]),
               "final_test_loss": float(res.metrics["test_loss"][i, -1]),
               "bits_per_dim": float(np.mean(bpd)), "bits_per_dim_stderr": float(np.std(bpd, ddof=1) / np.sqrt(len(bpd))),
               "mmd2_to_test": mmd, **_scalars(cs, "")}
        row["class_frequencies"] = np.asarray(cs["class_frequencies"]).round(4).tolist()
        runs.append(row)
        metrics[f"seed{g['seed']}/samples"] = xs01[:64].astype(np.float32)
        metrics[f"seed{g['seed']}/bits_per_dim_per_example"] = bpd.astype(np.float32)
        print(f"seed {g['seed']}: test bits/dim {row['bits_per_dim']:.3f} +- {row['bits_per_dim_stderr']:.3f}, "
              f"classifier score {row['classifier_score']:.2f} (real test data {float(real['classifier_score']):.2f}), "
              f"confidence {row['mean_confidence']:.3f}")
        if grids is None:
            grids = xs01[:64]
            run_dir.figure("samples.png", sample_grid(
                grids, nrow=8, title=f"{config.net} on {raw.name} ({config.sampler}, {config.sample_steps} steps)"))
            real_imgs = np.asarray(raw.x_test[:64])
            run_dir.figure("test_images.png", sample_grid(real_imgs, nrow=8, title=f"{raw.name}: test images"))

    ok = [r for r in runs if not r["diverged"]] or runs
    headline = {"bits_per_dim": float(np.mean([r["bits_per_dim"] for r in ok])),
                "classifier_score": float(np.mean([r["classifier_score"] for r in ok])),
                "mean_confidence": float(np.mean([r["mean_confidence"] for r in ok])),
                "class_entropy": float(np.mean([r["class_entropy"] for r in ok])),
                **_scalars(real, "real_test_"), "classifier_test_accuracy": clf_acc,
                "num_levels": levels, "uniform_model_bits_per_dim": float(np.log2(levels)),
                "num_runs": len(runs), "num_diverged": int(sum(r["diverged"] for r in runs)),
                "train_seconds": res.timing["total_s"]}
    conventions = {**res.conventions,
                   "task": f"denoising score matching (continuous time), eps-parameterized {config.net}",
                   "sde": f"{config.sde} {dict(config.sde_options)}",
                   "data_scaling": f"pixels in [0, 1] rescaled to [{low:g}, {high:g}]",
                   "training_data": f"{config.dequantized_copies} uniformly dequantised copies of the training set "
                                    "(0 = the discrete images)",
                   "bits_per_dim": f"test set ({n_eval} images), uniform dequantisation with {levels} levels, PF-ODE "
                                   f"from t = {config.likelihood_eps:g} ({config.likelihood_solver}, "
                                   f"{config.likelihood_steps} steps), Hutchinson divergence "
                                   f"({config.num_probes} Rademacher probe(s))",
                   "samples": f"{config.sampler}, {config.sample_steps} steps, Tweedie denoising at the end, "
                              "clipped to the data range",
                   "classifier": "sklearn multinomial logistic regression on [0, 1] pixels (C = 1)",
                   "classifier_score": "exp(mean KL(p(y|x) || mean p(y|x))), max = number of classes",
                   "mmd2_to_test": "unbiased MMD^2, Gaussian kernel with median-heuristic bandwidth, [0, 1] pixels"}
    results.write_results(run_dir, config, "score_digits", conventions, runs, headline, metrics)
    return headline
