"""Score-based generative modelling with SDEs (Song et al. 2021, ICLR; Song & Ermon 2019, NeurIPS).

Modules (one concept each):

* ``sde``: ``VESDE``, ``VPSDE``, ``SubVPSDE`` (pytrees): drift, diffusion, perturbation kernel,
  prior sampling and log-density, exact one-step transitions.
* ``losses``: continuous-time denoising score matching (``sigma2`` or likelihood weighting, with
  importance sampling of ``t``), NCSN's noise-conditional loss,
  ``make_score_fn`` (network output -> score). ``task``: ``make_task`` for ``dl_course.train``.
* ``nets``: ``ScoreMLP`` and ``ScoreUNet`` with Gaussian Fourier time embeddings.
* ``samplers``: ``sample(sde, score_fn, shape, key, method=..., num_steps=...)`` with Euler-Maruyama,
  reverse diffusion, predictor-corrector, annealed Langevin and the probability-flow ODE.
* ``ode``: ODE solves through diffrax: adaptive Dopri5 / Tsit5, fixed-step Euler, Heun, midpoint, RK4; NFE.
* ``likelihood``: ``log_likelihood`` through the probability-flow ODE (Hutchinson or exact
  divergence), ``dequantize`` and ``bits_per_dim``.
* ``discrete_bound``: bits/dim of discrete pixels from a score model by Gaussian dequantisation at
  a small time, the PF-ODE and a per-pixel level decoder (``discrete_log_likelihood_bound``);
  ``level_models``: the score model of K-level images a study builds once (dequantisation, base
  score, decoding time) with its test bits/dim and samples (``level_score_model``).
* ``ema``: debiased weight EMA (``ema_hook`` for the engine).
* ``metrics``: MMD, sliced Wasserstein, Frechet distance, kernel inception distance, classifier score.
  ``feature_scores``: Frechet distance / KID in a digits MLP classifier's penultimate features with
  train-vs-test and pixel-shuffled references, class-histogram KL (``sample_scores``).
* ``analytic``: exact marginals and scores for Gaussian-mixture data (tests, oracle baselines),
  ``FactorizedMixture`` for sharply peaked, dequantised-like data.
* ``baselines``: bits/dim of simple density models (histogram, Gaussian, GMM, PPCA) on the same
  dequantised data. ``sample_quality``: a digits classifier's view of samples and nearest-neighbour
  (memorisation) distances.
* ``flow``: RealNVP affine couplings with ActNorm and invertible linear mixing (Glow), exact
  log-likelihood and inverse; ``make_flow_task`` trains it on dequantised data with the engine.
* ``vae``: VAE with a Gaussian encoder and a categorical (K-level) or Gaussian decoder, ELBO,
  IWAE-k, beta-VAE; ``make_vae_task`` for the engine.

Contract: ``score_fn(x, t)`` maps ``x [batch, ...]`` and a per-example time vector ``t [batch]`` to
an array shaped like ``x``.
"""

from dl_course.generative import flow, vae
from dl_course.generative.analytic import FactorizedMixture, GaussianMixture
from dl_course.generative.baselines import BASELINES, baseline_bits_per_dim
from dl_course.generative.dequantized_task import dequantized_task
from dl_course.generative.discrete_bound import (
    DiscreteBound,
    decode_levels,
    decoder_time,
    discrete_bits_per_dim,
    discrete_log_likelihood_bound,
)
from dl_course.generative.ema import EMAState, ema, ema_hook, ema_params
from dl_course.generative.flow import RealNVP
from dl_course.generative.flow import make_task as make_flow_task
from dl_course.generative.level_models import LevelScoreModel, level_score_model
from dl_course.generative.likelihood import (
    LikelihoodResult,
    bits_per_dim,
    dequantize,
    divergence_exact,
    divergence_hutchinson,
    draw_probes,
    likelihood,
    log_likelihood,
)
from dl_course.generative.losses import (
    LOSSES,
    dsm_loss,
    dsm_per_example,
    get_loss,
    importance_times,
    likelihood_weight_normalizer,
    make_score_fn,
    ncsn_loss,
    ncsn_per_example,
    noise_levels,
)
from dl_course.generative.metrics import (
    classifier_score,
    frechet_distance,
    kernel_inception_distance,
    mmd2,
    sliced_wasserstein,
)
from dl_course.generative.nets import SCORE_NETS, GaussianFourierProjection, ScoreMLP, ScoreUNet, get_score_net
from dl_course.generative.ode import ODE_SOLVERS, ODEInfo, dopri5, rk4
from dl_course.generative.sample_quality import (
    DigitsClassifier,
    fit_digits_classifier,
    label_statistics,
    nearest_neighbour_distances,
    sample_quality_report,
)
from dl_course.generative.samplers import PREDICTORS, SAMPLERS, sample, tweedie_denoise
from dl_course.generative.sde import SDES, VESDE, VPSDE, SubVPSDE, get_sde
from dl_course.generative.task import make_task
from dl_course.generative.vae import VAE, iwae_bound
from dl_course.generative.vae import make_task as make_vae_task

__all__ = [  # the public names, re-exported from the modules above
    "BASELINES", "DigitsClassifier", "DiscreteBound", "EMAState", "FactorizedMixture", "GaussianFourierProjection",
    "GaussianMixture", "LOSSES", "LevelScoreModel", "LikelihoodResult", "ODEInfo", "ODE_SOLVERS", "PREDICTORS",
    "RealNVP", "SAMPLERS", "SCORE_NETS", "SDES", "ScoreMLP", "ScoreUNet", "SubVPSDE", "VAE", "VESDE", "VPSDE",
    "baseline_bits_per_dim", "bits_per_dim", "classifier_score", "decode_levels", "decoder_time", "dequantize",
    "dequantized_task", "discrete_bits_per_dim", "discrete_log_likelihood_bound", "divergence_exact",
    "divergence_hutchinson", "dopri5", "draw_probes", "dsm_loss", "dsm_per_example", "ema", "ema_hook", "ema_params",
    "fit_digits_classifier", "flow", "frechet_distance", "get_loss", "get_score_net", "get_sde", "importance_times",
    "iwae_bound", "kernel_inception_distance", "label_statistics", "level_score_model", "likelihood",
    "likelihood_weight_normalizer", "log_likelihood", "make_flow_task", "make_score_fn", "make_task", "make_vae_task",
    "mmd2", "ncsn_loss", "ncsn_per_example", "nearest_neighbour_distances", "noise_levels", "rk4", "sample",
    "sample_quality_report", "sliced_wasserstein", "tweedie_denoise", "vae",
]
