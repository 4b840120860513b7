"""Three families of deep generative models on the same 8x8 digits: score model, VAE, RealNVP flow."""

from dl_course import configs
from dl_course.studies import generative_models
from dl_course.train import default_config

VARIANTS = {
    # For a GPU: MNIST through tfds (download once with network access; 256 levels), the small
    # U-Net score model, wider VAE and flow, 50k steps each, 5000 test images. Not yet run.
    "paper_scale": {
        "train.dataset": "tfds:mnist", "num_levels": 256, "train.steps": 50_000, "train.eval_every": 5000,
        "train.batch_size": 128, "train.eval_batch_size": 1000, "train.eval_examples": 5000, "bpd_examples": 5000,
        "score.net": "score_unet", "score.net_options": {"channels": (32, 64, 128), "embed_dim": 128},
        "score.learning_rate": 2e-4, "score.steps": 0,
        "vae.hidden_dims": (512, 512), "vae.latent_dim": 32, "vae.learning_rate": 1e-3,
        "flow.hidden_dims": (1024, 1024), "flow.num_couplings": 8, "flow.learning_rate": 1e-4,
    },
}

GALLERY = {
    "section": "Module 3 — generative models", "order": 3,
    "title": "Score model vs VAE vs RealNVP on 8×8 digits (Song et al. 2021; Kingma & Welling 2014; Burda et al. 2016; "
             "Dinh et al. 2017)",
    "figures": ["samples.png", "score_bits_per_dim_per_image.png", "rate_distortion.png"],
    "shows": "three families trained by the engine on the same split; test bits/dim (bounds on the same discrete NLL) "
             "next to simple baselines; classifier statistics, Fréchet distance / KID in an MLP classifier's features "
             "and nearest-training-neighbour distances of samples; the score model's per-image bits/dim with standard "
             "errors; the VAE's rate–distortion curve over β",
    "ours": "test bits/dim: score model (discrete bound: Gaussian dequantisation, PF-ODE, level decoder; mean of "
            "{score_bound_draws} draws per image) {bits_per_dim[score]:.2f} (median {median_bits_per_dim[score]:.2f}, "
            "max {max_bits_per_dim[score]:.2f}), VAE IWAE-{iwae_samples} "
            "{bits_per_dim[vae]:.2f} (ELBO {vae_elbo_bits_per_dim:.2f}), RealNVP {bits_per_dim[flow]:.2f}; baselines: "
            "per-pixel histogram {baselines[histogram]:.2f}, Gaussian {baselines[gaussian]:.2f}, "
            "GMM {baselines[gmm]:.2f}, "
            "PPCA {baselines[pca_gaussian]:.2f}; samples (score / VAE / flow): classifier mean max-probability "
            "{classifier[score][mean_confidence]:.2f} / {classifier[vae][mean_confidence]:.2f} / "
            "{classifier[flow][mean_confidence]:.2f} vs {classifier[real][mean_max_probability]:.2f} "
            "on test images; Fréchet distance {frechet_distance[score]:.2f} / {frechet_distance[vae]:.2f} / "
            "{frechet_distance[flow]:.2f} vs train-vs-test {frechet_distance_train_vs_test:.2f} (pixel-shuffled "
            "{frechet_distance_shuffled_test:.0f}); KID {kernel_inception_distance[score]:.2f} / "
            "{kernel_inception_distance[vae]:.2f} / {kernel_inception_distance[flow]:.2f} vs "
            "{kernel_inception_distance_train_vs_test:.2f}; median nearest-training distance "
            "{nearest_neighbour[score]:.2f} / {nearest_neighbour[vae]:.2f} / {nearest_neighbour[flow]:.2f} vs "
            "{nearest_neighbour[test]:.2f} for test images",
    "paper": "likelihood families compared in bits/dim on one dequantization (Theis et al. 2016): on CIFAR-10 RealNVP "
             "3.49, IAF VAE 3.11 (Kingma et al. 2016), score SDE 2.99 (Song et al. 2021): not comparable",
}


def get_config(variant=None):
    """The score model, a VAE and a RealNVP flow on the 1347 training digits, each a Task in one
    vmapped sweep over seeds; test bits/dim against baselines, sample quality, rate-distortion.

    Command: ``dl-course run generative_models`` (``generative_models:paper_scale`` for MNIST on a GPU;
    ``--config.pool=2`` for 4x4 average-pooled digits).
    Runtime: 4 minutes of wall time on 2 idle cores (re-run 2026-12-08: score 42 s, VAE 18 s, flow
    47 s of training; 17 minutes when shared with another reference run).
    Sizes: 2 seeds per family in one vmapped sweep each; score MLP 3 x 512 correcting the diffused
    per-pixel histogram, 2000 Adam steps (VP SDE, sigma^2-weighted DSM on t in [eps, 1], EMA 0.999;
    the weighting and step count of score_digits, chosen there on validation criteria); VAE
    64-256-16, 3000 steps; RealNVP 8 couplings (128, 128), 3000 steps; one more VAE sweep, vmapped
    over the other 4 betas, for the beta curve; bits/dim on the 450 test images (IWAE-1000; the
    score model's discrete bound decoded at std/alpha = 0.2 level spacings, PF-ODE with adaptive
    Dopri5, rtol = atol = 1e-5, per image
    the mean of 4 draws of (z, probe) with its standard error). Samples: 256 per run; the score
    model's by the PF-ODE (score_digits' default sampler), the VAE's the decoder mean of prior
    draws, the flow's its inverse of Gaussian draws; judged by the logistic-regression classifier
    (confidence, class-histogram KL) and by the Frechet distance / KID in the penultimate features
    of an MLP classifier against the test images, with references at 256 images (training vs test;
    pixel-shuffled test vs test).
    Measured (reference run of 2026-12-07: epoch orders by index_shuffle, the bounded correction
    c = 3; 2 seeds, 450 test images; test bits/dim, every number an upper bound on the discrete
    NLL): VAE IWAE-1000 2.08 (ELBO 2.27), score model 2.12 (2.129 / 2.116 per seed; median 2.09;
    mean NFE 189; unbounded: 2.13, likelihood-weighted: 2.19), RealNVP 2.27; baselines: per-pixel
    histogram 2.44, Gaussian 2.97, GMM (10) 3.07, PPCA (16) 3.50, uniform 4.09. Every family beats
    every baseline. The score model's test images are dequantised by the Gaussian forward kernel
    (its own dequantisation, a bound on the same discrete likelihood); the VAE's categorical
    decoder bounds the discrete likelihood directly; the flow and the continuous baselines use the
    shared uniform dequantisation.
    The score model's per-image tail: per-image standard error median 0.074 bits/dim (4 draws);
    mean - median 0.026 / 0.030 per seed (target <= 0.05: met); max 3.30 / 3.68 against
    2 x median 4.20 / 4.17 (target met; unbounded correction: 5.02 / 6.02). The maximum is still
    test image 104 in both seeds (the VAE and the flow also rank it among their worst: the data),
    now within the bound of the rest (next-worst 3.18 / 3.24). VAE max 3.43 / 3.88 (median 2.06),
    flow 4.97 / 4.78 (median 2.20).
    Samples (score / VAE / flow, mean +- std over the 2 seeds): classifier mean max-probability
    0.725 / 0.680 / 0.728 vs 0.903 on real test digits (target >= 0.85 for the score model: NOT
    met); Frechet distance 3.40 +- 0.33 / 5.17 +- 0.12 / 5.97 +- 0.36 against train-vs-test 1.77
    and pixel-shuffled test 77.2 (score target <= 3.53: met); KID 0.56 / 2.31 / 2.02 (train-vs-test
    -0.38, shuffled 74.6). Every family's samples are recognisable digit shapes with speckle or blur
    (samples.png): the score model is closest to the data in feature space, but no family reaches
    the confidence of real digits. The classifier is not the cap: it gives 0.90 on real test
    digits, 0.85 on test digits with 3-level noise and 0.71 on digits blurred by 0.7 px
    (score_digits' confidence_references); with 1347 training digits and MLPs the limiting factor
    is the digit shapes the models learn, not the samplers (score_digits: every sampler 0.72-0.74).
    Median nearest-training distance 1.51 / 1.38 / 1.25 vs 1.04 for test images (no memorisation).
    beta-VAE: rate 35.1 -> 2.6 nats for beta 0.25 -> 4; the test ELBO is best at beta = 2 (2.13
    bits/dim), not 1 (2.27): the beta = 1 VAE overfits the 1347 digits.
    Writes: samples.png, score_bits_per_dim_per_image.png, rate_distortion.png, config.json,
    summary.json, metrics.npz.
    """
    t = default_config()
    t.dataset = "digits"
    t.optimizer = "adam"
    t.steps = 3000
    t.batch_size = 128
    t.eval_every = 500
    t.eval_batch_size = 500
    t.seeds = [0, 1]
    t.learning_rates = [1e-3]          # replaced per family (<family>.learning_rate)
    c = configs.study_config(
        t,
        num_levels=17,                 # digits are stored as k / 16
        pool=1,                        # > 1: average-pool the images by this factor (e.g. 2: 4x4 digits)
        bpd_examples=0,                # 0 = the whole test set
        eval_seed=0,                   # the test images' dequantisation noise, shared by every model
        num_samples=256,
        baselines=["histogram", "gaussian", "gmm", "pca_gaussian"],
        baseline_options={"gmm": {"num_components": 10}, "pca_gaussian": {"num_components": 16}},
        score={"learning_rate": 1e-3, "steps": 2000, "low": -1.0, "high": 1.0,
               "sde": "vp", "sde_options": {}, "net": "score_mlp",
               "net_options": {"hidden_dims": (512, 512, 512), "embed_dim": 128},
               "loss_options": {"weighting": "sigma2"}, "ema_decay": 0.999,
               "dequantization": "gaussian", "decoder_ratio": 0.2, "base_score": "histogram",
               "correction_scale": "alpha", "correction_bound": 3.0,   # c tanh(net / c): score_digits' validated pick
               "sampler": "ode", "sample_steps": 100,   # score_digits' default (picked there on validation FD)
               "sampler_options": {"solver": "dopri5", "rtol": 1e-5, "atol": 1e-5},
               "bound_draws": 4,      # independent draws of (z, probes) per test image, averaged
               # eps: the PF-ODE's start with uniform dequantisation; "gaussian" starts at the decoding time
               "likelihood": {"solver": "dopri5", "rtol": 1e-5, "atol": 1e-5, "eps": 1e-5, "num_probes": 1,
                              "max_steps": 4096}},
        vae={"learning_rate": 1e-3, "steps": 0, "latent_dim": 16, "hidden_dims": (256,), "dropout_rate": 0.2,
             "iwae_samples": 1000, "elbo_samples": 16},
        flow={"learning_rate": 1e-3, "steps": 0, "num_couplings": 8, "hidden_dims": (128, 128), "logit_alpha": 0.05,
              "dropout_rate": 0.2},
        feature_net={"hidden": (128, 64), "seed": 0},
        betas=[0.25, 0.5, 1.0, 2.0, 4.0])
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return generative_models.run(config, run)
