"""Universal approximation: one-hidden-layer ReLU networks of widths 2..1024 on 1D and 2D targets."""

from dl_course.studies import universality
from dl_course.train import default_config


def get_config():
    """Approximation error vs width (2, 4, ..., 1024) for smooth and discontinuous 1D / 2D targets.

    Command: ``dl-course run universality``.
    Runtime: about 3 minutes of CPU time, under 2 minutes on 2 free cores (two compiled programs: every width and target of
    an input dimension trains in one vmapped program; 2 seeds).
    Expected: error falls with width for every target; the smooth ones much faster and much lower
    (test MSE slope about -2.3 for sin1d, -1.2 for smooth2d, down to ~1e-6 and ~1e-4 at width
    1024) than the discontinuous ones (slope about -0.3, levelling off near 0.05 and 0.08, a limit
    set by the 256 / 512 training points); 2D targets need more width for the same error.
    Writes: error_vs_width.png, fitted_functions.png, config.json, summary.json (runs: width,
    target, seed, train_mse, test_mse), metrics.npz.
    """
    c = default_config()
    c.dataset = "universality"
    c.model = "width_blocks"
    c.model_options = {}
    c.loss = "mse"
    c.targets = ["sin1d", "square1d", "smooth2d", "disk2d"]
    c.widths = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    c.activation = "relu"
    c.n_train_1d = 256
    c.n_train_2d = 512
    c.test_per_axis_1d = 1000
    c.test_per_axis_2d = 50
    c.data_seed = 0
    c.optimizer = "adam"
    c.learning_rates = [3e-3]
    c.schedule = "cosine"
    c.seeds = [0, 1]
    c.steps = 3000
    c.batch_size = 0
    c.eval_every = 500
    c.slope_from_width = 8
    c.show_widths = [2, 8, 64, 1024]
    return c


def main(config, run):
    return universality.run(config, run)
