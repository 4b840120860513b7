"""Keskar et al. 2017 / Jastrzębski et al. 2017 / Li et al. 2018: small- vs large-batch SGD,
sharpness, flatness and the loss landscape on MNIST-1D."""

from dl_course import configs
from dl_course.studies import batch_size_sharpness
from dl_course.train import default_config

VARIANTS = {
    # GPU: Keskar et al.'s scale on MNIST-1D (all 4000 examples, a wider net, 200 epochs).
    "paper_scale": {"train.dataset_options.num_train": 4000, "train.model_options.width": 512,
                    "train.seeds": [0, 1, 2, 3], "batch_sizes": [16, 64, 256, 1024, 0], "epochs": 200,
                    "measure.examples": 4000, "measure.lanczos_iters": 50, "measure.trace_samples": 100},
}

GALLERY = {
    "section": "Module 2 — training dynamics and generalization", "order": 10,
    "title": "Batch size vs sharpness (Keskar et al. 2017; Jastrzębski et al. 2017)",
    "figures": ["sharpness_vs_batch_size.png", "landscape.png"],
    "shows": "SGD with B ∈ {10, 50, 250, 1000 = full batch} on 1000 MNIST-1D examples, 2 seeds × 4 learning rates "
             "vmapped per batch size, each trained for max(50 epochs, 1500 steps); λmax, Hessian trace, normalized "
             "margin of all 32 solutions in one vmapped program; filter-normalized 1D slices and the interpolation "
             "between the B = 10 and B = 1000 solutions",
    "ours": "every run stopped at the first evaluation with train loss ≤ {target_train_loss:g} "
            "({num_compared} of {num_runs} reached it; final losses "
            "{train_loss_range[0]:.4f}–{train_loss_range[1]:.4f}); at η = "
            "{reference_learning_rate:g}, after {at_reference_learning_rate[B=10][steps_to_target]:.0f} and "
            "{at_reference_learning_rate[B=1000][steps_to_target]:.0f} steps: λmax {lambda_max_small_batch:.2f} "
            "(B = {small_batch}) vs {lambda_max_large_batch:.2f} (B = {large_batch}), trace "
            "{hessian_trace_small_batch:.3g} vs {hessian_trace_large_batch:.3g}, test accuracy "
            "{test_accuracy_small_batch:.3f} vs {test_accuracy_large_batch:.3f}; across runs Spearman(λmax, η/B) = "
            "{spearman_lambda_max_vs_lr_over_b:.2f}, (test accuracy, λmax) = "
            "{spearman_test_accuracy_vs_lambda_max:.2f}, (test accuracy, η/B) = "
            "{spearman_test_accuracy_vs_lr_over_b:.2f}; left within the stopping band: (λmax, final train loss) = "
            "{spearman_lambda_max_vs_train_loss:.2f}",
    "paper": "large batches find sharper minima that generalize worse, η/B sets the flatness. Under the "
             "equal-loss control both survive, the sharpness gap smaller than without it (an order of magnitude "
             "in λmax when the smallest batch ran to a much lower loss than full batch); the steps to the target "
             "depend on η, not on B; the two largest batches end alike",
}


def get_config(variant=None):
    """Batch sizes 10, 50, 250 and full batch (n = 1000), each a 2 seeds x 4 learning rates sweep.

    Command: ``dl-course run batch_size_sharpness`` (reference run: ``--workdir results/batch_size_sharpness``;
    GPU: ``dl-course run batch_size_sharpness:paper_scale``).
    Runtime: about 6 CPU-minutes on 2 free cores (13 minutes on a shared machine): 4 sweeps of a
    40-128-128-10 MLP on 1000 MNIST-1D examples, every run stopped at the first evaluation (every
    100 steps) with train loss <= 0.01 within a budget of 14000 steps (the sweep ends when all
    its runs have stopped; full batch takes most of the time), then λmax (Lanczos, 20 HVPs) and
    the Hessian trace (Hutchinson, 20 probes) of all 32 solutions in one vmapped program.
    Expected (reference run): all 32 runs reach the target (final losses 0.0069-0.0100), after
    about 10700 / 5400 / 2700 / 1400 steps for η = 0.025 / 0.05 / 0.1 / 0.2 whatever the batch
    size (the steps depend on η, not on B). At equal loss small batches still end flatter: at
    η = 0.1 λmax 0.73 (B = 10) vs 2.15 (B = 1000), trace 21 vs 46, test accuracy 0.465 vs 0.432;
    across runs Spearman(λmax, η/B) = -0.94, (test accuracy, λmax) = -0.86. What the control
    removed: without the stop (1500-5000 steps, B = 10 at loss 0.0033, B = 1000 at 0.035) λmax
    differed 16x (0.33 vs 5.49) and the trace 11x; at equal loss 3x and 2x. B = 250 and full
    batch end alike (λmax 2.0-2.2); the flattening comes from B = 10 and 50. Runs stop between
    0.007 and 0.010 (one evaluation interval), and λmax still correlates with that residual loss
    (Spearman +0.63): the fastest runs (η = 0.2, B = 10) overshoot most and are the flattest.
    The filter-normalized slice of the large-batch solution is the sharper one; the interpolation
    between the solutions shows no barrier higher than the ends.
    With ``--config.train.target_train_loss=0`` every run trains the whole budget instead.
    Writes: sharpness_vs_batch_size.png, landscape.png, config.json, summary.json, metrics.npz.
    """
    t = default_config()
    t.dataset_options.num_train = 1000
    t.model = "mlp"
    t.model_options.width = 128
    t.model_options.depth = 2
    t.optimizer = "sgd"
    t.steps = 14000  # replaced per batch size by the budget max(epochs * n / B, min_steps)
    t.eval_every = 100
    t.target_train_loss = 0.01  # every run stops here (Jiang et al. 2020); 0 = train the whole budget
    t.seeds = [0, 1, 2, 3]
    t.learning_rates = [0.025, 0.05, 0.1, 0.2]
    c = configs.study_config(
        t,
        batch_sizes=[10, 50, 250, 0],  # 0: full batch (gradient descent)
        epochs=50,  # step budget per batch size: max(epochs * n / B, min_steps)
        min_steps=14000,
        measure={"examples": 1000, "lanczos_iters": 20, "trace_samples": 20, "seed": 0},
        landscape={"seed": 0, "learning_rate": 0.1, "points": 41, "radius": 1.0, "interp_min": -0.5,
                   "interp_max": 1.5})
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return batch_size_sharpness.run(config, run)
