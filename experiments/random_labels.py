"""Zhang et al. 2017: an MLP (and optionally the 1D CNN) fits random labels, shuffled and random inputs
on MNIST-1D."""

import ml_collections

from dl_course.studies import random_labels
from dl_course.train import default_config


def get_config():
    """Random-label fractions p = 0, 0.2, ..., 1 of an MLP in one sweep; shuffled / random inputs.

    Command: ``dl-course run random_labels`` (reference run: ``--workdir results/random_labels``).
    Runtime: about 3 CPU-minutes (2 cores): a 40-256-256-10 MLP (78k parameters) on the 4000
    MNIST-1D training examples, SGD with momentum 0.9 (lr 0.01, batch 100, 4000 steps = 100
    epochs); one vmapped sweep of 2 seeds x 6 fractions, then 2 seeds each with shuffled and with
    random inputs; training accuracy evaluated every 50 steps.
    Expected: every run reaches 100% training accuracy; the steps needed grow with p (about 2200
    for true labels, about 3000 for p >= 0.6); test accuracy falls from about 0.63 to chance (0.1)
    as p -> 1; shuffled inputs change nothing for the MLP (it is permutation invariant); random
    inputs are fitted too, at chance test accuracy.
    The 1D CNN: add it to ``models`` (``--config.models="{'mlp': {'width': 256, 'depth': 2},
    'cnn1d': {'channels': (32, 32, 32)}}"``). It is left out of the default run for time: with
    the engine's sliced convolutions (``conv_impl=auto``) it costs about 3.2 ms per run-step on 2
    CPU cores (120 ms with XLA's convolution), i.e. about 3.5 more minutes for 16 runs x 4000
    steps.
    Paper scale (GPU): the CNN line above plus ``--config.seeds='[0,1,2]' --config.steps=10000``.
    Writes: random_labels.png, config.json, summary.json, metrics.npz.
    """
    c = default_config()
    c.dataset_options.num_train = 4000  # all of MNIST-1D's training set
    c.models = ml_collections.ConfigDict({"mlp": {"width": 256, "depth": 2}})
    c.model = "mlp"  # each model of ``models`` is trained in turn, with its options
    c.model_options = c.models.mlp.copy_and_resolve_references()
    c.optimizer = "momentum"
    c.optimizer_options = ml_collections.ConfigDict({"momentum": 0.9})
    c.batch_size = 100
    c.steps = 4000
    c.eval_every = 50
    c.seeds = [0, 1]
    c.learning_rates = [0.01]
    c.random_label_fractions = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    c.variant_seeds = [0, 1]  # seeds of the shuffled-input and random-input sweeps (clean labels)
    c.random_inputs_seed = 0
    return c


def main(config, run):
    return random_labels.run(config, run)
