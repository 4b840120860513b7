"""Belkin et al. 2019 / Nakkiran et al. 2019: double descent in random features and MLP width."""

from dl_course import configs
from dl_course.studies import double_descent
from dl_course.train import default_config

VARIANTS = {
    # GPU: all 4000 examples, 5 feature draws, widths to 1024, 10x longer training.
    "paper_scale": {"train.dataset_options.num_train": 4000, "rf.seeds": [0, 1, 2, 3, 4],
                    "widths": [2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024], "train.steps": 20000},
}

GALLERY = {
    "section": "Module 2 — training dynamics and generalization", "order": 30,
    "title": "Double descent (Belkin et al. 2019; Nakkiran et al. 2019)",
    "figures": ["double_descent.png"],
    "shows": "(i) random ReLU features, minimum-norm least squares (float64) on n = 500 MNIST-1D examples, 15 feature "
             "counts n/20 … 10n, 2 draws vmapped; (ii) one-hidden-layer MLP widths 2 … 256, label noise 0 and 20%, "
             "full-batch Adam to interpolation",
    "ours": "(i) test squared loss peaks at p = {peak_num_features} (n = {n_train}; ‖β̂‖ peaks at p = "
            "{coef_norm_peak_num_features}): test MSE {peak_test_mse:.0f}, 0–1 error {peak_test_error:.2f}, falling "
            "again to {test_error_most_features:.2f} at p = 10n, below the best under-parameterized "
            "{min_test_error_below_threshold:.2f}; (ii) with label noise {label_noise[1]:g} the test error peaks "
            "({mlp_by_noise[1][peak_test_error]:.3f}) at width {mlp_by_noise[1][peak_width]} (first interpolating "
            "width {mlp_by_noise[1][first_interpolating_width]}), then descends to "
            "{mlp_by_noise[1][test_error_largest_width]:.2f}; without noise the peak is "
            "{mlp_by_noise[0][peak_test_error]:.2f} at width {mlp_by_noise[0][peak_width]}",
    "paper": "peak at the interpolation threshold, sharpened by label noise",
}


def get_config(variant=None):
    """Random ReLU features (min-norm least squares) and a one-hidden-layer MLP width sweep.

    Command: ``dl-course run double_descent`` (reference run: ``--workdir results/double_descent``;
    GPU: ``dl-course run double_descent:paper_scale``).
    Runtime: about 4 CPU-minutes (2 cores): (i) 2 feature draws x 15 feature counts from n/20 to
    10 n, min-norm least squares in float64 on n = 500 MNIST-1D examples (one vmapped program);
    (ii) 10 widths, each a sweep of 2 seeds x label noise {0, 0.2} trained by full-batch Adam
    (lr 3e-3, 2000 steps) to (near) zero training error.
    Expected: (i) the test squared loss and the norm of the solution peak sharply at p = n and
    fall again for p > n, test 0-1 error peaking there too; (ii) with 20% random labels the test
    error peaks near the smallest width that fits the training set and descends again for wider
    networks; without label noise the peak is small or absent.
    Writes: double_descent.png, config.json, summary.json, metrics.npz.
    """
    t = default_config()
    t.dataset_options.num_train = 500
    t.model = "mlp"
    t.model_options.width = 16  # replaced by each entry of ``widths``
    t.model_options.depth = 1
    t.optimizer = "adam"
    t.batch_size = 0
    t.steps = 2000
    t.eval_every = 500
    t.seeds = [0, 1]
    t.learning_rates = [3e-3]
    c = configs.study_config(
        t,
        rf={"feature_ratios": [0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0],
            "seeds": [0, 1], "block": 128},
        widths=[2, 4, 8, 12, 16, 24, 32, 64, 128, 256],
        label_noise=[0.0, 0.2],  # random_label_fraction values, vmapped with the seeds
        interpolation_tolerance=0.01)  # train error counted as interpolation
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return double_descent.run(config, run)
