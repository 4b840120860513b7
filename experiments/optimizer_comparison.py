"""Wilson et al. 2017 style: GD, SGD, momentum, Adam and SAM on one task, characterized by λmax,
the Hessian trace and the normalized margin against test accuracy."""

import ml_collections

from dl_course.studies import optimizer_comparison
from dl_course.train import default_config


def get_config():
    """Five optimizers x 2 seeds x 4 learning rates, 1500 steps each, 40-128-128-10 MLP, n = 1000.

    Command: ``dl-course run optimizer_comparison`` (reference run: ``--workdir results/optimizer_comparison``).
    Runtime: about 4 CPU-minutes (2 cores): one sweep per optimizer, then λmax (Lanczos, 20 HVPs),
    Hessian trace (Hutchinson, 20 probes) and the normalized margin of its 8 solutions in one
    vmapped program.
    Expected (reference run): every optimizer fits most of the training set (train accuracy
    >= 0.85 for Adam, >= 0.97 for the others); median lambda_max is largest for Adam (7.1, not
    bounded by 2/eta: its preconditioned sharpness is), then GD (3.5, below 2/eta = 5 at the best
    eta 0.4), momentum (2.8), SGD (2.5) and SAM (1.6); mean test accuracy follows the reverse
    order within a few points (Adam 0.42, GD 0.43, momentum 0.44, SGD 0.45, SAM 0.46). Across all
    40 runs, Spearman(test accuracy, lambda_max) = -0.78, (., trace) = -0.75 and
    (., normalized margin) = +0.59.
    Paper scale (GPU): ``--config.dataset_options.num_train=4000 --config.model_options.width=512
    --config.steps=20000 --config.seeds='[0,1,2,3,4]' --config.measure.examples=4000
    --config.measure.lanczos_iters=50 --config.measure.trace_samples=100``.
    Writes: optimizer_comparison.png, config.json, summary.json, metrics.npz.
    """
    c = default_config()
    c.dataset_options.num_train = 1000
    c.model = "mlp"
    c.model_options.width = 128
    c.model_options.depth = 2
    c.steps = 1500
    c.eval_every = 100
    c.seeds = [0, 1]
    minibatch = 50
    c.optimizers = ml_collections.ConfigDict({
        "gd": {"rule": "sgd", "options": {}, "batch_size": 0, "learning_rates": [0.05, 0.1, 0.2, 0.4]},
        "sgd": {"rule": "sgd", "options": {}, "batch_size": minibatch, "learning_rates": [0.05, 0.1, 0.2, 0.4]},
        "momentum": {"rule": "momentum", "options": {"momentum": 0.9}, "batch_size": minibatch,
                     "learning_rates": [0.005, 0.01, 0.02, 0.04]},
        "adam": {"rule": "adam", "options": {}, "batch_size": minibatch,
                 "learning_rates": [2.5e-4, 5e-4, 1e-3, 2e-3]},
        "sam": {"rule": "sam", "options": {"base": "sgd", "rho": 0.05}, "batch_size": minibatch,
                "learning_rates": [0.05, 0.1, 0.2, 0.4]},
    })
    c.optimizer = "sgd"  # each entry of ``optimizers`` replaces optimizer, options, batch size, lrs
    c.learning_rates = [0.1]
    c.measure = ml_collections.ConfigDict({"examples": 1000, "lanczos_iters": 20, "trace_samples": 20, "seed": 0,
                                           "margin_quantile": 0.1})
    return c


def main(config, run):
    return optimizer_comparison.run(config, run)
