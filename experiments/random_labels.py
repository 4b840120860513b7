"""Zhang et al. 2017: an MLP (and optionally the 1D CNN) fits random labels, shuffled and random inputs
on MNIST-1D."""

from dl_course import configs
from dl_course.studies import random_labels
from dl_course.train import default_config

VARIANTS = {
    # GPU: the 1D CNN next to the MLP, 3 seeds, 10000 steps.
    "paper_scale": {"models": {"mlp": {"width": 256, "depth": 2}, "cnn1d": {"channels": (32, 32, 32)}},
                    "train.seeds": [0, 1, 2], "train.steps": 10000},
}

GALLERY = {
    "section": "Module 2 — training dynamics and generalization", "order": 20,
    "title": "Random labels (Zhang et al. 2017)",
    "figures": ["random_labels.png"],
    "shows": "40-256-256-10 MLP, all 4000 MNIST-1D training examples, SGD + momentum; label-noise fractions "
             "p = 0 … 1 in one vmapped sweep (labels randomized in-graph per run); shuffled and random inputs",
    "ours": "100% train accuracy reached by every run: {mlp[all_fit]}; steps to fit {mlp[steps_to_fit]:.0f} and test "
            "accuracy {mlp[test_accuracy]:.2f} for p = {random_label_fractions:g}; shuffled inputs: test accuracy "
            "{mlp[shuffled_inputs_test_accuracy]:.2f} (fit in {mlp[shuffled_inputs_steps_to_fit]:.0f} steps); random "
            "inputs fit in {mlp[random_inputs_steps_to_fit]:.0f} steps at test accuracy "
            "{mlp[random_inputs_test_accuracy]:.2f}",
    "paper": "all fit, test accuracy falls to chance, fitting is slower with more label noise. In the paper's Fig. 1a "
             "Gaussian inputs fit faster than random labels but slower than true labels; the 1D CNN is an option "
             "(`--config.models`)",
}


def get_config(variant=None):
    """Random-label fractions p = 0, 0.2, ..., 1 of an MLP in one sweep; shuffled / random inputs.

    Command: ``dl-course run random_labels`` (reference run: ``--workdir results/random_labels``;
    GPU: ``dl-course run random_labels:paper_scale``, which adds the 1D CNN).
    Runtime: about 1.2 CPU-minutes (75 s user + sys; 81 s of wall time on 2 cores shared with
    another reference run and the test suite): a 40-256-256-10 MLP (78k parameters) on the 4000
    MNIST-1D training examples, SGD with momentum 0.9 (lr 0.01, batch 100, 4000 steps = 100
    epochs); one vmapped sweep of 2 seeds x 6 fractions, then 2 seeds each with shuffled and with
    random inputs; training accuracy evaluated every 50 steps.
    Expected (reference run of 2026-12-07, epoch orders by index_shuffle): every run reaches 100%
    training accuracy; the steps needed grow with p (about 2350 for true labels, 2900-3200 for
    p >= 0.6); test accuracy falls from about 0.62 to chance (0.1)
    as p -> 1; shuffled inputs change nothing for the MLP (it is permutation invariant); random
    inputs are fitted too (faster than the real data here), at chance test accuracy.
    The 1D CNN: add it to ``models`` (``--config.models="{'mlp': {'width': 256, 'depth': 2},
    'cnn1d': {'channels': (32, 32, 32)}}"``). It is left out of the default run for time: with
    the engine's sliced convolutions (``conv_impl=auto``) it costs about 3.2 ms per run-step on 2
    CPU cores (120 ms with XLA's convolution), i.e. about 3.5 more minutes for 16 runs x 4000
    steps.
    Writes: random_labels.png, config.json, summary.json, metrics.npz.
    """
    t = default_config()
    t.dataset_options.num_train = 4000  # all of MNIST-1D's training set
    t.model = "mlp"  # each model of ``models`` is trained in turn, with its options
    t.model_options.width = 256
    t.model_options.depth = 2
    t.optimizer = "momentum"
    t.optimizer_options.momentum = 0.9
    t.batch_size = 100
    t.steps = 4000
    t.eval_every = 50
    t.seeds = [0, 1]
    t.learning_rates = [0.01]
    c = configs.study_config(
        t,
        models={"mlp": {"width": 256, "depth": 2}},
        random_label_fractions=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        variant_seeds=[0, 1],  # seeds of the shuffled-input and random-input sweeps (clean labels)
        random_inputs_seed=0)
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return random_labels.run(config, run)
