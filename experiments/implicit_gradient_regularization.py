"""Barrett & Dherin 2021: GD follows the modified flow of L + (η/4)||∇L||² to O(η²), the gradient flow to O(η)."""

from dl_course.cli import apply_overrides
from dl_course.studies import igr
from dl_course.train import default_config

#: ``--config.paper_scale=True`` applies these (replacing any value given for the same keys): a
#: wider, deeper network on more data and a 7-rung ladder (a 64x range of step sizes). For a GPU.
PAPER_SCALE = [
    "--config.dataset_options.n_train=512",
    "--config.dataset_options.dim=16",
    "--config.model_options.width=256",
    "--config.model_options.depth=2",
    "--config.eta_max=0.1",
    "--config.num_etas=7",
]


def get_config():
    """Backward error analysis of full-batch GD on a 4-16-1 tanh MLP (97 params, 32 teacher examples).

    GD runs for time T = num_records * eta_max with a factor-2 ladder of step sizes
    eta_max / 2^k (k < num_etas), all in one vmapped program; the gradient flow of L and the
    modified flows of L + (eta/4)||grad L||^2 (one per eta) are integrated with RK4 at step
    eta_min / rk4_substeps (vmapped over the flows), in float64. The log-log slope of the distance
    at T vs eta is fitted over the ladder.

    Command: ``dl-course run implicit_gradient_regularization``; ``--config.paper_scale=True``
    for the larger GPU run (see PAPER_SCALE).
    Runtime: about 20 s of CPU time on 2 cores (mostly compilation).
    Expected: slope_gradient_flow ~ 1 and slope_modified_flow ~ 2 (paper: 1 and 2); every
    modified-flow distance far above the RK4 error estimate.
    Writes: backward_error.png, config.json, summary.json, metrics.npz.
    """
    c = default_config()
    c.dataset = "teacher"
    c.dataset_options.n_train = 32
    c.dataset_options.n_test = 8
    c.dataset_options.dim = 4
    c.model = "mlp"
    c.model_options.width = 16
    c.model_options.depth = 1
    c.model_options.activation = "tanh"
    c.loss = "mse"
    c.batch_size = 0
    c.seed = 0
    c.eta_max = 0.2
    c.num_etas = 5
    c.num_records = 20
    c.rk4_substeps = 8
    c.dtype = "float64"
    c.paper_scale = False
    return c


def main(config, run):
    if config.paper_scale:
        apply_overrides(config, PAPER_SCALE)
    return igr.run(config, run)
