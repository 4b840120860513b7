"""Plain vs annealed Langevin dynamics on a two-mode mixture (Song & Ermon 2019, NeurIPS, Fig. 3)."""

import ml_collections

from dl_course import configs
from dl_course.studies import langevin_mixture

VARIANTS = {
    # The paper's sizes are the default (exact scores, no training); 10x longer plain chains show
    # that the weights never recover (not in the reference run).
    "long_chains": {"plain_steps": 100_000, "record_every": 100},
}

GALLERY = {
    "section": "Module 3 — generative models", "order": 1,
    "title": "Annealed vs plain Langevin (Song & Ermon 2019)",
    "figures": ["langevin_mixture.png"],
    "shows": "exact scores of a 0.2 / 0.8 mixture far apart; minor-mode fraction of plain and annealed Langevin chains",
    "ours": "plain {estimated_weight_plain:.3f} ± {estimated_weight_plain_stderr:.3f} (wrong; initial split "
            "{initial_minor_fraction:.3f}), annealed {estimated_weight_annealed:.3f} ± "
            "{estimated_weight_annealed_stderr:.3f}, true {true_weight:g} ({num_seeds} seeds, mean ± stderr)",
    "paper": "plain Langevin loses the mode weights, annealed Langevin recovers them (Fig. 3): reproduced",
}


def get_config(variant=None):
    """0.2 N((-5,-5), I) + 0.8 N((5,5), I), exact scores; plain vs annealed Langevin, 5 seeds.

    No training, hence no engine config (``train``): every key belongs to the study.

    Command: ``dl-course run langevin_mixture`` (``langevin_mixture:long_chains``: 100 000 plain
    steps, to see that longer plain chains do not fix the weights).
    Runtime: about 25 s of CPU time, mostly compilation (1280 2D samples per seed; 10 000 plain
    steps and 10 x 100 annealed steps).
    Expected (paper: same qualitative result, Fig. 3): plain Langevin leaves about 0.49 of the
    samples in the minor mode (about the fraction of uniform initial points on its side) at every step
    count, annealed Langevin gives 0.21 +- 0.01 (true weight 0.2; seed-to-seed sd 0.01).
    Reference run: plain 0.488 +- 0.004, annealed 0.210 +- 0.006 (mean +- stderr over 5 seeds).
    Writes: langevin_mixture.png (exact / plain / annealed samples, plain weight vs steps),
    config.json, summary.json (one run per seed), metrics.npz.
    """
    c = ml_collections.ConfigDict()
    c.weight = 0.2                      # weight of the minor component (the paper's 1/5)
    c.mean_minor = [-5.0, -5.0]
    c.mean_major = [5.0, 5.0]
    c.component_var = 1.0
    c.num_samples = 1280                # the paper's sample size
    c.init_box = 8.0                    # uniform initial points on [-8, 8]^2 (paper)
    c.step_size = 0.1                   # paper: eps = 0.1
    c.plain_steps = 10_000              # paper: 1000; 10x longer to show the weights never recover
    c.record_every = 10
    c.sigma_max = 20.0                  # paper: sigma_1 = 20, sigma_L = 1, L = 10, T = 100
    c.sigma_min = 1.0
    c.num_levels = 10
    c.n_steps_each = 100
    c.seeds = [0, 1, 2, 3, 4]
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return langevin_mixture.run(config, run)
