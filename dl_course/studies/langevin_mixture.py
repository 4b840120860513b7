"""Why Langevin dynamics needs annealing (Song & Ermon 2019, NeurIPS, "Generative Modeling by
Estimating Gradients of the Data Distribution", Sec. 3.2.2 and Fig. 3).

Data: ``p = w N(mu_1, I) + (1 - w) N(mu_2, I)`` with ``mu_1 = (-5, -5)``, ``mu_2 = (5, 5)`` and
``w = 0.2`` (the paper's example). Both samplers use the *exact* score, so every error is the
sampler's:

* plain Langevin dynamics ``x <- x + (eps / 2) grad log p(x) + sqrt(eps) z`` from uniform
  initial points in ``[-8, 8]^2``. Within each mode the score does not depend on the weights
  (``grad log p = -(x - mu_k)`` there), and crossing the low-density gap between the modes takes
  exponentially long, so the chain keeps the fraction of initial points in each basin (about 1/2)
  instead of ``w`` — the weights are lost.
* annealed Langevin dynamics (the paper's Alg. 1; ``dl_course.generative.samplers.annealed_langevin``)
  with the exact scores of the noise-perturbed mixtures ``p_sigma = p * N(0, sigma^2 I)`` for
  geometric ``sigma`` from ``sigma_max`` to ``sigma_min``, ``n_steps_each`` steps per level with step
  ``eps sigma_i^2 / sigma_min^2``, from the same initial points. At large ``sigma`` the modes overlap
  and the mass redistributes according to the weights, which the later levels keep.

The estimated weight is the fraction of final samples nearer to ``mu_1`` than to ``mu_2``. As in
the paper, the annealed samples are draws of ``p_{sigma_min}`` (component variance ``1 + sigma_min^2
= 2`` here, no final denoising), so their clusters look wider than the exact samples'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import results
from dl_course.generative import VESDE, GaussianMixture
from dl_course.generative.langevin import langevin_dynamics, mode_fractions
from dl_course.generative.samplers import annealed_langevin
from dl_course.plotting.generative import langevin_weights_figure


def make_mixture(config) -> GaussianMixture:
    """The two-component mixture of the config (``weight`` on ``mean_minor``), unit covariances."""
    means = np.asarray([config.mean_minor, config.mean_major], np.float32)
    covs = np.broadcast_to(np.eye(2, dtype=np.float32) * config.component_var, (2, 2, 2))
    return GaussianMixture.from_covs(np.asarray([config.weight, 1.0 - config.weight], np.float32), means, covs)


def minor_fraction(mixture: GaussianMixture, x):
    """Fraction of the points ``x [n, 2]`` nearer to the first (minor) mean than to the second."""
    return mode_fractions(mixture.means, x)[0]


def plain_langevin(mixture: GaussianMixture, x, key, step_size, num_steps: int, record_every: int):
    """``langevin_dynamics`` with the exact data score, recording the minor-mode fraction."""
    score = jax.grad(lambda y: jnp.sum(mixture.logpdf(y)))   # examples are independent: per-example score
    return langevin_dynamics(score, x, key, step_size, num_steps, record_every, lambda y: minor_fraction(mixture, y))


def annealed(mixture: GaussianMixture, x, key, config):
    """Annealed Langevin (Song & Ermon 2019, Alg. 1) with the exact perturbed scores.

    The noise levels are those of a ``VESDE(sigma_min, sigma_max)`` at ``t = linspace(1, 0, L)``,
    i.e. geometric from ``sigma_max`` to ``sigma_min``; the step at level i is ``step_size
    sigma_i^2 / sigma_min^2``.
    """
    sde = VESDE(sigma_min=float(config.sigma_min), sigma_max=float(config.sigma_max))
    return annealed_langevin(sde, mixture.score_fn(sde), x, key, num_steps=int(config.num_levels), eps=0.0,
                             n_steps_each=int(config.n_steps_each), step_lr=float(config.step_size))


def run(config, run_dir: results.RunDir) -> dict:
    """Plain vs annealed Langevin with the exact score, one run per seed; figure, summary, metrics."""
    mixture = make_mixture(config)
    n = int(config.num_samples)
    rec = int(config.record_every)
    if int(config.plain_steps) % rec:
        raise ValueError(f"plain_steps ({config.plain_steps}) must be a multiple of record_every ({rec})")

    @jax.jit
    def one(seed):
        key = jax.random.key(seed)
        k_init, k_plain, k_ann, k_exact = jax.random.split(key, 4)
        x0 = jax.random.uniform(k_init, (n, 2), jnp.float32, -config.init_box, config.init_box)
        xp, fracs = plain_langevin(mixture, x0, k_plain, jnp.float32(config.step_size), int(config.plain_steps), rec)
        xa, _ = annealed(mixture, x0, k_ann, config)
        xe = mixture.sample(k_exact, n)
        return xp, fracs, xa, xe

    runs, all_fracs, samples = [], [], {}
    for seed in config.seeds:
        xp, fracs, xa, xe = jax.device_get(one(int(seed)))
        w_plain, w_ann = float(fracs[-1]), float(minor_fraction(mixture, jnp.asarray(xa)))
        runs.append({"seed": int(seed), "learning_rate": float(config.step_size), "diverged": False,
                     "estimated_weight_plain": w_plain, "estimated_weight_annealed": w_ann,
                     "initial_minor_fraction": float(fracs[0]),
                     "exact_sample_weight": float(minor_fraction(mixture, jnp.asarray(xe))),
                     "true_weight": float(config.weight)})
        all_fracs.append(fracs)
        samples[int(seed)] = (xe, xp, xa)
        print(f"seed {seed}: plain {w_plain:.3f} (initial split {float(fracs[0]):.3f}), annealed {w_ann:.3f}, "
              f"true {config.weight:g}")
    fracs = np.stack(all_fracs)
    w_plain = np.array([r["estimated_weight_plain"] for r in runs])
    w_ann = np.array([r["estimated_weight_annealed"] for r in runs])
    se = lambda v: float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    headline = {"estimated_weight_plain": float(w_plain.mean()), "estimated_weight_plain_stderr": se(w_plain),
                "estimated_weight_annealed": float(w_ann.mean()), "estimated_weight_annealed_stderr": se(w_ann),
                "true_weight": float(config.weight),
                "initial_minor_fraction": float(np.mean([r["initial_minor_fraction"] for r in runs])),
                "num_seeds": len(runs), "num_samples": n}
    xe, xp, xa = samples[int(config.seeds[0])]
    shown = {"exact samples": xe, "Langevin dynamics": xp, "annealed Langevin dynamics": xa}
    run_dir.figure("langevin_mixture.png", langevin_weights_figure(
        shown, {k: float(minor_fraction(mixture, jnp.asarray(v))) for k, v in shown.items()}, fracs, rec,
        headline["estimated_weight_annealed"], float(config.weight)))
    conventions = {
        "score": "exact (closed-form) scores of the data mixture / of its Gaussian-perturbed versions",
        "estimated_weight": "fraction of final samples nearer to mean_minor than to mean_major",
        "learning_rate": "the Langevin step size eps (no training in this study)",
        "init": f"uniform on [-{config.init_box:g}, {config.init_box:g}]^2, the same points for both samplers",
        "plain": f"{config.plain_steps} steps of size {config.step_size:g}",
        "annealed": f"{config.num_levels} geometric noise levels {config.sigma_max:g} -> {config.sigma_min:g}, "
                    f"{config.n_steps_each} steps each, step {config.step_size:g} sigma_i^2 / sigma_min^2",
        "device": results.device_info()}
    results.write_results(run_dir, config, "langevin_mixture", conventions, runs, headline,
                          {"plain_minor_fraction": fracs.astype(np.float32),
                           "plain_fraction_steps": np.arange(fracs.shape[1]) * rec,
                           "seed": np.asarray([r["seed"] for r in runs]),
                           "estimated_weight_plain": w_plain, "estimated_weight_annealed": w_ann,
                           "samples_exact": xe[:1280], "samples_plain": xp[:1280], "samples_annealed": xa[:1280]})
    return headline
