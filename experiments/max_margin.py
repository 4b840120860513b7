"""Soudry et al. 2018: GD's direction -> the l2 max-margin (SVM) direction; sign descent and Adam -> the linf one."""

from dl_course import configs
from dl_course.studies import max_margin
from dl_course.train import default_config

VARIANTS = {
    # A 10x longer horizon, as in Soudry et al.'s Fig. 1 (GD's angle gap closes like 1/log t).
    "paper_scale": {"train.steps": 1_000_000, "train.eval_every": 10_000, "num_records": 200},
}

GALLERY = {
    "section": "Module 2 — training dynamics and generalization", "order": 1,
    "title": "Max-margin bias (Soudry et al. 2018; ℓ∞ for sign descent / Adam)",
    "figures": ["max_margin.png"],
    "shows": "Logistic loss, linear model without bias, w(0)=0, 10⁵ full-batch steps; GD / normalized GD / sign "
             "descent / Adam × 2 learning rates on two separable sets (40 points in 20-D; 20 points in 50-D) whose ℓ2 "
             "and ℓ∞ max-margin directions differ; 1−cos to each exact direction (NNLS / LP), ‖w(t)‖ and normalized "
             "margin vs log t",
    "ours": "cos(ℓ2, ℓ∞ directions) {datasets[separable][cos_between_l2_and_linf_directions]:.2f} / "
            "{datasets[separable_high_dim][cos_between_l2_and_linf_directions]:.2f}; cos to ℓ2: GD "
            "{cos_to_expected_direction_range[gd]:.3f}, normalized GD "
            "{cos_to_expected_direction_range[normalized_gd]:.3f} (≥ 0.999 by step "
            "{earliest_step_1_minus_cos_to_expected_stays_below_1e-3[normalized_gd]}); cos to ℓ∞: sign descent "
            "{cos_to_expected_direction_range[sign_descent]:.3f}, Adam {cos_to_expected_direction_range[adam]:.2f}; "
            "GD's ‖w‖·γ₂ per unit log t {gd_norm_growth_per_log_t_times_margin:.2f}",
    "paper": "→ ℓ2 for GD (NGD faster), → ℓ∞ for sign/Adam, ‖w‖ ~ log t / γ",
}


def get_config(variant=None):
    """Logistic loss, linear model, w(0) = 0, full batch, 10^5 steps, 4 optimizers x 2 step sizes, 2 datasets.

    Datasets (both ``separable``, options chosen so the l2 and linf max-margin directions differ
    clearly, cos 0.73 and 0.78): 40 points in 20 dimensions, and the high-dimensional variant, 20
    points in 50 dimensions. Each optimizer (``optimizers.<label>``: rule, learning rates,
    fixed options) is one vmapped sweep over seeds x its learning rates. Seeds only matter with
    ``--config.train.model_options.init_scale`` > 0. w(t) is recorded at ``num_records`` log-spaced
    steps. Both max-margin directions are solved exactly (NNLS least-distance program; LP).

    Engine keys (model, loss, steps, seeds) are in ``config.train``; ``datasets``, ``optimizers``
    and ``num_records`` are study keys.

    Command: ``dl-course run max_margin``. Paper scale: ``dl-course run max_margin:paper_scale`` (10^6 steps).
    Runtime: about 1 minute of CPU time on 2 cores (8 sweeps of 10^5 steps, compiled once each).
    Expected: GD and normalized GD end nearer the l2 direction (GD's 1 - cos falls slowly, like
    1/log t; normalized GD's much faster) with ||w_GD|| growing like log(t)/gamma_l2; sign descent
    and Adam end nearer the linf direction (cos > 0.9 to linf, below the l2-vs-linf cosine to l2).
    Writes: max_margin.png, config.json, summary.json, metrics.npz (x, y: the training data).
    """
    t = default_config()
    t.dataset = "separable"
    t.model = "linear"
    t.model_options = {"use_bias": False, "init_scale": 0.0}
    t.loss = "logistic"
    t.batch_size = 0
    t.steps = 100_000
    t.eval_every = 1000
    t.seeds = [0]
    t.learning_rates = []  # per optimizer, in config.optimizers
    c = configs.study_config(
        t,
        datasets={
            "separable": {"n_train": 40, "n_test": 200, "dim": 20, "seed": 0},
            "separable_high_dim": {"n_train": 20, "n_test": 200, "dim": 50, "seed": 0},
        },
        num_records=150,
        optimizers={
            "gd": {"optimizer": "sgd", "learning_rates": [1.0, 4.0], "options": {}},
            "normalized_gd": {"optimizer": "normalized_gd", "learning_rates": [0.01, 0.1], "options": {}},
            "sign_descent": {"optimizer": "sign_descent", "learning_rates": [1e-4, 1e-3], "options": {}},
            "adam": {"optimizer": "adam", "learning_rates": [1e-4, 1e-3], "options": {}},
        })
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return max_margin.run(config, run)
