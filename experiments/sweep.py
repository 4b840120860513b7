"""Main job: 4 seeds x 4 learning rates of an overparameterized MLP on MNIST-1D, in one program."""

from dl_course.studies import grid_sweep
from dl_course.train import default_config


def get_config():
    """Seeds x learning rates of a 40-256-256-10 MLP (78k params, 4000 examples) on MNIST-1D.

    Command: ``dl-course run sweep`` (override e.g. ``--config.steps=6000``).
    Runtime: 1-2 minutes on 2 CPU cores (8 s on one H200) (16 runs x 2000 SGD steps, one compiled program).
    Expected: train loss falls for every run; the largest learning rate (0.3) reaches the lowest
    train loss; test accuracy rises with the learning rate, to about 0.65 at lr 0.3 (the paper's MLP
    reaches 68% with longer training); no run diverges.
    Writes: table on stdout, learning_curves.png, test_accuracy_curves.png, heatmap.png,
    config.json, summary.json, metrics.npz.
    """
    c = default_config()
    c.model = "mlp"
    c.model_options.width = 256
    c.model_options.depth = 2
    c.optimizer = "sgd"
    c.steps = 2000
    c.batch_size = 128
    c.eval_every = 100
    c.seeds = [0, 1, 2, 3]
    c.learning_rates = [0.01, 0.03, 0.1, 0.3]
    c.checkpoint_every = 5
    return c


def main(config, run):
    return grid_sweep.run(config, run)
