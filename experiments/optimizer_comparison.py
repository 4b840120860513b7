"""Wilson et al. 2017 style: GD, SGD, momentum, Adam and SAM on one task, characterized by λmax,
the Hessian trace and the normalized margin against test accuracy."""

from dl_course import configs
from dl_course.studies import optimizer_comparison
from dl_course.train import default_config

VARIANTS = {
    # GPU: all 4000 examples, a wider net, 20000 steps, 5 seeds, more accurate measures.
    "paper_scale": {"train.dataset_options.num_train": 4000, "train.model_options.width": 512,
                    "train.steps": 20000, "train.seeds": [0, 1, 2, 3, 4], "measure.examples": 4000,
                    "measure.lanczos_iters": 50, "measure.trace_samples": 100},
}

GALLERY = {
    "section": "Module 2 — training dynamics and generalization", "order": 40,
    "title": "Optimizer comparison (Wilson et al. 2017 style)",
    "figures": ["optimizer_comparison.png"],
    "shows": "GD, SGD, momentum, Adam, SAM × 2 seeds × 4 learning rates on a 40-128-128-10 MLP (1000 examples, "
             "1500 steps); λmax, trace and normalized margin of all 40 solutions",
    "ours": "median λmax Adam {optimizers[adam][median_lambda_max]:.1f}, GD {optimizers[gd][median_lambda_max]:.1f}, "
            "momentum {optimizers[momentum][median_lambda_max]:.1f}, SGD {optimizers[sgd][median_lambda_max]:.1f}, "
            "SAM {optimizers[sam][median_lambda_max]:.1f}; mean test accuracy "
            "{optimizers[adam][mean_test_accuracy]:.2f} / {optimizers[gd][mean_test_accuracy]:.2f} / "
            "{optimizers[momentum][mean_test_accuracy]:.2f} / {optimizers[sgd][mean_test_accuracy]:.2f} / "
            "{optimizers[sam][mean_test_accuracy]:.2f} in the same order; Spearman(test accuracy, λmax) = "
            "{spearman_test_accuracy_vs_lambda_max:.2f}, (·, trace) = {spearman_test_accuracy_vs_trace:.2f}, "
            "(·, normalized margin) = {spearman_test_accuracy_vs_normalized_margin:.2f}",
    "paper": "Wilson et al.: adaptive methods generalize worse",
}


def get_config(variant=None):
    """Five optimizers x 2 seeds x 4 learning rates, 1500 steps each, 40-128-128-10 MLP, n = 1000.

    Command: ``dl-course run optimizer_comparison`` (reference run: ``--workdir results/optimizer_comparison``;
    GPU: ``dl-course run optimizer_comparison:paper_scale``).
    Runtime: about 3 CPU-minutes (2 cores): one sweep per optimizer, then λmax (Lanczos, 20 HVPs),
    Hessian trace (Hutchinson, 20 probes) and the normalized margin of its 8 solutions in one
    vmapped program.
    Expected (reference run): every optimizer fits most of the training set (train accuracy
    >= 0.85 for Adam, >= 0.97 for the others); median lambda_max is largest for Adam (7.1, not
    bounded by 2/eta: its preconditioned sharpness is), then GD (3.5, below 2/eta = 5 at the best
    eta 0.4), momentum (2.8), SGD (2.5) and SAM (1.6); mean test accuracy follows the reverse
    order within a few points (Adam 0.42, GD 0.43, momentum 0.44, SGD 0.45, SAM 0.46). Across all
    40 runs, Spearman(test accuracy, lambda_max) = -0.78, (., trace) = -0.75 and
    (., normalized margin) = +0.59. The runs end at different training losses, and the
    cross-entropy Hessian shrinks with the loss, so these rankings are partly loss rankings.
    Writes: optimizer_comparison.png, config.json, summary.json, metrics.npz.
    """
    t = default_config()
    t.dataset_options.num_train = 1000
    t.model = "mlp"
    t.model_options.width = 128
    t.model_options.depth = 2
    t.optimizer = "sgd"  # each entry of ``optimizers`` replaces optimizer, options, batch size, lrs
    t.steps = 8000  # the budget: every run stops at target_train_loss
    t.eval_every = 100
    t.target_train_loss = 0.01  # Jiang et al. 2020's stopping loss; 0 = train all 8000 steps
    t.seeds = [0, 1]
    t.learning_rates = [0.1]
    minibatch = 50
    c = configs.study_config(
        t,
        optimizers={
            "gd": {"rule": "sgd", "options": {}, "batch_size": 0, "learning_rates": [0.05, 0.1, 0.2, 0.4]},
            "sgd": {"rule": "sgd", "options": {}, "batch_size": minibatch, "learning_rates": [0.05, 0.1, 0.2, 0.4]},
            "momentum": {"rule": "momentum", "options": {"momentum": 0.9}, "batch_size": minibatch,
                         "learning_rates": [0.005, 0.01, 0.02, 0.04]},
            "adam": {"rule": "adam", "options": {}, "batch_size": minibatch,
                     "learning_rates": [2.5e-4, 5e-4, 1e-3, 2e-3]},
            "sam": {"rule": "sam", "options": {"base": "sgd", "rho": 0.05}, "batch_size": minibatch,
                    "learning_rates": [0.05, 0.1, 0.2, 0.4]},
        },
        measure={"examples": 1000, "lanczos_iters": 20, "trace_samples": 20, "seed": 0, "margin_quantile": 0.1})
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return optimizer_comparison.run(config, run)
