"""Belkin et al. 2019 / Nakkiran et al. 2019: double descent in random features and MLP width."""

from dl_course import configs
from dl_course.studies import double_descent
from dl_course.train import default_config

VARIANTS = {
    # GPU: all 4000 examples, 5 feature draws, widths to 1024, 10x longer training.
    "paper_scale": {"train.dataset_options.num_train": 4000, "rf.seeds": [0, 1, 2, 3, 4],
                    "widths": [2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024], "train.steps": 20000},
}

def _mlp(q, sides=("minus_left", "minus_right")):
    """The width-sweep peak of label-noise level ``q`` with its paired differences to the neighbours
    (``sides``: those the reference run has; an edge maximum has one)."""
    diffs = " / ".join(f"{{mlp_by_noise[{q}][peak][{s}][estimate]:+.3f}} {{mlp_by_noise[{q}][peak][{s}][ci]:+.3f}} "
                       f"(width {{mlp_by_noise[{q}][peak][{s}][neighbour]}})" for s in sides)
    return (f"largest test error {{mlp_by_noise[{q}][peak][value]:.3f}} {{mlp_by_noise[{q}][peak][value_ci]:.3f}} at "
            f"width {{mlp_by_noise[{q}][peak][at]}} (first interpolating width "
            f"{{mlp_by_noise[{q}][first_interpolating_width]}}), minus its neighbours {diffs}: "
            f"{{mlp_by_noise[{q}][peak][statement]}}")


GALLERY = {
    "section": "Module 2 — training dynamics and generalization", "order": 30, "compares": True,
    "title": "Double descent (Belkin et al. 2019; Nakkiran et al. 2019)",
    "figures": ["double_descent.png"],
    "shows": "(i) random ReLU features, minimum-norm least squares (float64) on n = 500 MNIST-1D examples, 15 feature "
             "counts n/20 … 10n, 5 draws vmapped; (ii) one-hidden-layer MLP widths 2 … 256, label noise 0 and 20%, "
             "full-batch Adam to interpolation, 5 seeds. Means with 95% t intervals over draws / seeds; a peak is "
             "claimed only where the paired differences to both neighbours exclude 0",
    "ours": ("(i) test squared loss {rf_peak_test_mse[value]:.0f} {rf_peak_test_mse[value_ci]:.0f} at p = "
             "{rf_peak_test_mse[at]} (n = {n_train}) — {rf_peak_test_mse[statement]}; test 0-1 error "
             "{rf_peak_test_error[value]:.3f} {rf_peak_test_error[value_ci]:.3f} at p = {rf_peak_test_error[at]} — "
             "{rf_peak_test_error[statement]}; falling to {test_error_most_features:.2f} at p = 10n. (ii) label noise "
             "{label_noise[1]:g}: " + _mlp(1) + "; no label noise: " + _mlp(0, ("minus_right",))),
    "paper": "peak at the interpolation threshold, sharpened by label noise: reproduced with random features (a "
             "CI-separated peak at p = n); the MLP width sweep shows no peak the 5 seeds support, with or without "
             "label noise (with 20% noise the largest mean sits at the first interpolating width, within noise of "
             "its neighbours)",
}


def get_config(variant=None):
    """Random ReLU features (min-norm least squares) and a one-hidden-layer MLP width sweep.

    Command: ``dl-course run double_descent`` (reference run: ``--workdir results/double_descent``;
    GPU: ``dl-course run double_descent:paper_scale``).
    Runtime: 153 s of CPU time (user; 20 minutes of wall clock on a shared 2-core machine): (i) 5
    feature draws x 15 feature counts from n/20 to 10 n, min-norm least squares in float64 on n =
    500 MNIST-1D examples (one vmapped program); (ii) 10 widths, each a sweep of 5 seeds x label
    noise {0, 0.2} trained by full-batch Adam (lr 3e-3, 2000 steps) to (near) zero training error.
    Expected: (i) the test squared loss and the norm of the solution peak sharply at p = n and
    fall again for p > n, test 0-1 error peaking there too; (ii) with 20% random labels the test
    error peaks near the smallest width that fits the training set and descends again for wider
    networks; without label noise the peak is small or absent. Reference run (95% t intervals over
    5 draws / seeds): random features test MSE 218 [113, 323] at p = n = 500, CI-separated from p =
    450 and 550; MLP, 20% label noise: largest test error 0.776 [0.755, 0.797] at width 16 (the first
    interpolating width), minus widths 12 / 24: +0.007 [-0.009, +0.022] / +0.007 [-0.017, +0.030] —
    no peak the seeds support; no noise: largest at width 2 (the edge), no peak.
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
    t.seeds = [0, 1, 2, 3, 4]
    t.learning_rates = [3e-3]
    c = configs.study_config(
        t,
        rf={"feature_ratios": [0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0],
            "seeds": [0, 1, 2, 3, 4], "block": 128},
        widths=[2, 4, 8, 12, 16, 24, 32, 64, 128, 256],
        label_noise=[0.0, 0.2],  # random_label_fraction values, vmapped with the seeds
        interpolation_tolerance=0.01)  # train error counted as interpolation
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return double_descent.run(config, run)
