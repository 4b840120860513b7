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
    "shows": "GD, SGD, momentum, Adam, SAM × 2 seeds × 4 learning rates on a 40-128-128-10 MLP (1000 examples), "
             "every run stopped at one training loss; λmax, trace and normalized margin of all 40 solutions",
    "ours": "every run stopped at the first evaluation with train loss ≤ {target_train_loss:g} ({num_compared} of "
            "{num_runs} reached it; median steps Adam {optimizers[adam][median_steps_to_target]:.0f}, GD "
            "{optimizers[gd][median_steps_to_target]:.0f}, momentum {optimizers[momentum][median_steps_to_target]:.0f}, "
            "SGD {optimizers[sgd][median_steps_to_target]:.0f}, SAM {optimizers[sam][median_steps_to_target]:.0f}); "
            "Adam / GD / momentum / SGD / SAM: median λmax {optimizers[adam][median_lambda_max]:.2f} / {optimizers[gd][median_lambda_max]:.2f} / "
            "{optimizers[momentum][median_lambda_max]:.2f} / {optimizers[sgd][median_lambda_max]:.2f} / "
            "{optimizers[sam][median_lambda_max]:.2f} and mean test accuracy "
            "{optimizers[adam][mean_test_accuracy]:.3f} / {optimizers[gd][mean_test_accuracy]:.3f} / "
            "{optimizers[momentum][mean_test_accuracy]:.3f} / {optimizers[sgd][mean_test_accuracy]:.3f} / "
            "{optimizers[sam][mean_test_accuracy]:.3f} in the same order; Spearman(test accuracy, λmax) = "
            "{spearman_test_accuracy_vs_lambda_max:.2f}, (·, trace) = {spearman_test_accuracy_vs_trace:.2f}, "
            "(·, normalized margin) = {spearman_test_accuracy_vs_normalized_margin:.2f}; left within the stopping "
            "band: (λmax, final train loss) = {spearman_lambda_max_vs_train_loss:.2f}",
    "paper": "Wilson et al.: adaptive methods generalize worse. Under the equal-loss control Adam still has the "
             "lowest and SAM the highest test accuracy (a few points) and flatter solutions still test better. "
             "Vanished: Adam's large λmax (its slow runs had been stopped far above the others' loss; at equal "
             "loss GD is the sharpest) and the positive correlation of test accuracy with the normalized margin "
             "(it turns negative)",
}


def get_config(variant=None):
    """Five optimizers x 2 seeds x 4 learning rates, 1500 steps each, 40-128-128-10 MLP, n = 1000.

    Command: ``dl-course run optimizer_comparison`` (reference run: ``--workdir results/optimizer_comparison``;
    GPU: ``dl-course run optimizer_comparison:paper_scale``).
    Runtime: about 5 CPU-minutes on 2 free cores (11 minutes on a shared machine): one sweep per
    optimizer, every run stopped at the first evaluation (every 100 steps) with train loss <= 0.01
    within 8000 steps (a sweep ends when all its runs have stopped; full-batch GD takes most of the
    time), then λmax (Lanczos, 20 HVPs), Hessian trace (Hutchinson, 20 probes) and the normalized
    margin of its 8 solutions in one vmapped program.
    Expected (reference run): all 40 runs reach the target (final losses 0.0075-0.0099), in 700
    (largest η) to 6400 (Adam, η = 2.5e-4) steps. Median λmax: GD 2.01, Adam 1.68, momentum 1.59,
    SGD 1.38, SAM 0.94; mean test accuracy Adam 0.427, GD 0.438, momentum 0.444, SGD 0.451,
    SAM 0.457. Across all 40 runs Spearman(test accuracy, λmax) = -0.66, (., trace) = -0.52,
    (., normalized margin) = -0.63. What survives the control: the test-accuracy order of the
    optimizers (Adam worst, SAM best, a 3-point spread, as before) and "flatter tests better".
    What vanished: without the stop (1500 steps; Adam's slowest runs at loss 0.65, the others
    near 0.003) Adam had the largest λmax (7.1) and the normalized margin correlated positively
    with test accuracy (+0.59); both came from unequal training losses. λmax still correlates
    with the loss left within the stopping band (Spearman +0.59; runs stop between 0.0075 and
    0.01). With ``--config.train.target_train_loss=0`` every run trains all 8000 steps.
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
