"""Cohen et al. 2021: under full-batch GD the sharpness rises to 2/η and hovers there (edge of stability)."""

from dl_course import configs
from dl_course.studies import edge_of_stability
from dl_course.train import default_config

VARIANTS = {
    # For a GPU: all 4000 MNIST-1D training examples, the paper's width-200 tanh network, 20k steps.
    "paper_scale": {"train.dataset_options.num_train": 4000, "train.model_options.width": 200,
                    "train.steps": 20000, "train.eval_every": 50, "train.learning_rates": [0.04, 0.06, 0.1, 0.14]},
}

GALLERY = {
    "section": "Module 2 — training dynamics and generalization", "order": 0,
    "title": "Edge of stability (Cohen et al. 2021)",
    "figures": ["sharpness_and_loss.png", "sharpness_over_threshold.png"],
    "shows": "Full-batch GD, tanh MLP 40-100-100-10, MSE, 1000 MNIST-1D examples, η ∈ {0.1, 0.14, 0.2, 0.3} in one "
             "vmapped sweep; λmax by warm-started Lanczos every 40 steps rises (or falls) to 2/η and hovers there "
             "while the loss keeps falling non-monotonically. `--config.train.optimizer=adam` tracks preconditioned "
             "sharpness against 38/η (Cohen et al. 2022)",
    "ours": "median λmax/(2/η) over the last third: {sharpness_final_over_threshold_by_run:.3f} ({num_diverged} of "
            "{num_runs} runs diverged)",
    "paper": "≈ 1, hovering just above 2/η",
}


def get_config(variant=None):
    """Full-batch GD on a 40-100-100-10 tanh MLP (15k params), MSE, 1000 MNIST-1D examples, 4 step sizes.

    Every learning rate trains in one vmapped program; lambda_max of the full training loss is
    tracked every eval_every steps by warm-started Lanczos (``lanczos_iters`` HVPs, a study key:
    it reaches the tracking hook, not the engine config).
    Options: ``--config.train.model_options.activation=relu``; ``--config.train.optimizer=adam``
    with e.g. ``--config.train.learning_rates=[0.001,0.002,0.004]`` tracks Adam's preconditioned
    sharpness against 38/eta (Cohen et al. 2022).

    Command: ``dl-course run edge_of_stability``; on a GPU ``dl-course run edge_of_stability:paper_scale``
    (4000 examples, width 200, 20k steps; see VARIANTS).
    Runtime: about 2 minutes of CPU time on 2 cores (4 x 4000 GD steps + 100 Lanczos runs of 20 HVPs each).
    Expected: after a catapult at the first steps, lambda_max rises (progressive sharpening) until
    it reaches 2/eta, then hovers there while the loss keeps falling non-monotonically: the median
    lambda_max over the last third of training is 1.0-1.1 x 2/eta for every eta (paper: ~1,
    just above 2/eta).
    Writes: sharpness_and_loss.png, sharpness_over_threshold.png, config.json, summary.json,
    metrics.npz.
    """
    t = default_config()
    t.dataset = "mnist1d"
    t.dataset_options.num_train = 1000
    t.model = "mlp"
    t.model_options.width = 100
    t.model_options.depth = 2
    t.model_options.activation = "tanh"
    t.loss = "mse"
    t.optimizer = "sgd"
    t.batch_size = 0
    t.steps = 4000
    t.eval_every = 40
    t.eval_batch_size = 1000
    t.seeds = [0]
    t.learning_rates = [0.1, 0.14, 0.2, 0.3]
    return configs.select_variant(configs.study_config(t, lanczos_iters=20), variant, VARIANTS)


def main(config, run):
    return edge_of_stability.run(config, run)
