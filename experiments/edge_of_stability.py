"""Cohen et al. 2021: under full-batch GD the sharpness rises to 2/η and hovers there (edge of stability)."""

from dl_course.cli import apply_overrides
from dl_course.studies import edge_of_stability
from dl_course.train import default_config

#: ``--config.paper_scale=True`` applies these (they replace any value given for the same keys):
#: all 4000 MNIST-1D training examples, the paper's width-200 tanh network, 20k steps. For a GPU.
PAPER_SCALE = [
    "--config.dataset_options.num_train=4000",
    "--config.model_options.width=200",
    "--config.steps=20000",
    "--config.eval_every=50",
    "--config.learning_rates=[0.04, 0.06, 0.1, 0.14]",
]


def get_config():
    """Full-batch GD on a 40-100-100-10 tanh MLP (15k params), MSE, 1000 MNIST-1D examples, 4 step sizes.

    Every learning rate trains in one vmapped program; lambda_max of the full training loss is
    tracked every eval_every steps by warm-started Lanczos (``lanczos_iters`` HVPs).
    Options: ``--config.model_options.activation=relu``; ``--config.optimizer=adam`` with e.g.
    ``--config.learning_rates=[0.001,0.002,0.004]`` tracks Adam's preconditioned sharpness against
    38/eta (Cohen et al. 2022); ``--config.paper_scale=True`` for the GPU run (see PAPER_SCALE).

    Command: ``dl-course run edge_of_stability``.
    Runtime: about 2 minutes of CPU time on 2 cores (4 x 4000 GD steps + 100 Lanczos runs of 20 HVPs each).
    Expected: after a catapult at the first steps, lambda_max rises (progressive sharpening) until
    it reaches 2/eta, then hovers there while the loss keeps falling non-monotonically: the median
    lambda_max over the last third of training is 1.0-1.1 x 2/eta for every eta (paper: ~1,
    just above 2/eta).
    Writes: sharpness_and_loss.png, sharpness_over_threshold.png, config.json, summary.json,
    metrics.npz.
    """
    c = default_config()
    c.dataset = "mnist1d"
    c.dataset_options.num_train = 1000
    c.model = "mlp"
    c.model_options.width = 100
    c.model_options.depth = 2
    c.model_options.activation = "tanh"
    c.loss = "mse"
    c.optimizer = "sgd"
    c.batch_size = 0
    c.steps = 4000
    c.eval_every = 40
    c.eval_batch_size = 1000
    c.seeds = [0]
    c.learning_rates = [0.1, 0.14, 0.2, 0.3]
    c.lanczos_iters = 20
    c.paper_scale = False
    return c


def main(config, run):
    if config.paper_scale:
        apply_overrides(config, PAPER_SCALE)
    return edge_of_stability.run(config, run)
