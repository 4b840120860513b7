"""Soudry et al. 2018: GD's direction -> the l2 max-margin (SVM) direction; sign descent and Adam -> the linf one."""

from dl_course.cli import apply_overrides
from dl_course.studies import max_margin
from dl_course.train import default_config

#: ``--config.paper_scale=True`` applies these (replacing any value given for the same keys):
#: a 10x longer horizon, as in Soudry et al.'s Fig. 1 (GD's angle gap closes like 1/log t).
PAPER_SCALE = [
    "--config.steps=1000000",
    "--config.eval_every=10000",
    "--config.num_records=200",
]


def get_config():
    """Logistic loss, linear model without bias, w(0) = 0, full batch, 10^5 steps, 4 optimizers x 2 step sizes, 2 datasets.

    Datasets (both ``separable``, options chosen so the l2 and linf max-margin directions differ
    clearly, cos 0.73 and 0.78): 40 points in 20 dimensions, and the high-dimensional variant, 20
    points in 50 dimensions. Each optimizer (``optimizers.<label>``: rule, learning rates,
    fixed options) is one vmapped sweep over seeds x its learning rates. Seeds only matter with
    ``--config.model_options.init_scale`` > 0. w(t) is recorded at ``num_records`` log-spaced
    steps. Both max-margin directions are solved exactly (NNLS least-distance program; LP).

    Command: ``dl-course run max_margin``. Paper-scale: ``--config.paper_scale=True`` (10^6 steps).
    Runtime: about 1 minute of CPU time on 2 cores (8 sweeps of 10^5 steps, compiled once each).
    Expected: GD and normalized GD end nearer the l2 direction (GD's 1 - cos falls slowly, like
    1/log t; normalized GD's much faster) with ||w_GD|| growing like log(t)/gamma_l2; sign descent
    and Adam end nearer the linf direction (cos > 0.9 to linf, below the l2-vs-linf cosine to l2).
    Writes: max_margin.png, config.json, summary.json, metrics.npz (x, y: the training data).
    """
    c = default_config()
    c.dataset = "separable"
    c.datasets = {
        "separable": {"n_train": 40, "n_test": 200, "dim": 20, "seed": 0},
        "separable_high_dim": {"n_train": 20, "n_test": 200, "dim": 50, "seed": 0},
    }
    c.model = "linear"
    c.model_options = {"use_bias": False, "init_scale": 0.0}
    c.loss = "logistic"
    c.batch_size = 0
    c.steps = 100_000
    c.eval_every = 1000
    c.num_records = 150
    c.optimizers = {
        "gd": {"optimizer": "sgd", "learning_rates": [1.0, 4.0], "options": {}},
        "normalized_gd": {"optimizer": "normalized_gd", "learning_rates": [0.01, 0.1], "options": {}},
        "sign_descent": {"optimizer": "sign_descent", "learning_rates": [1e-4, 1e-3], "options": {}},
        "adam": {"optimizer": "adam", "learning_rates": [1e-4, 1e-3], "options": {}},
    }
    c.seeds = [0]
    del c.learning_rates  # per optimizer, in c.optimizers
    c.paper_scale = False
    return c


def main(config, run):
    if config.paper_scale:
        apply_overrides(config, PAPER_SCALE)
    return max_margin.run(config, run)
