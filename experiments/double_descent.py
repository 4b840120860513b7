"""Belkin et al. 2019 / Nakkiran et al. 2019: double descent in random features and MLP width."""

import ml_collections

from dl_course.studies import double_descent
from dl_course.train import default_config


def get_config():
    """Random ReLU features (min-norm least squares) and a one-hidden-layer MLP width sweep.

    Command: ``dl-course run double_descent`` (reference run: ``--workdir results/double_descent``).
    Runtime: about 4 CPU-minutes (2 cores): (i) 2 feature draws x 15 feature counts from n/20 to
    10 n, min-norm least squares in float64 on n = 500 MNIST-1D examples (one vmapped program);
    (ii) 10 widths, each a sweep of 2 seeds x label noise {0, 0.2} trained by full-batch Adam
    (lr 3e-3, 2000 steps) to (near) zero training error.
    Expected: (i) the test squared loss and the norm of the solution peak sharply at p = n and
    fall again for p > n, test 0-1 error peaking there too; (ii) with 20% random labels the test
    error peaks near the smallest width that fits the training set and descends again for wider
    networks; without label noise the peak is small or absent.
    Paper scale (GPU): ``--config.dataset_options.num_train=4000 --config.rf.seeds='[0,1,2,3,4]'
    --config.widths='[2,4,8,16,24,32,48,64,96,128,256,512,1024]' --config.steps=20000``.
    Writes: double_descent.png, config.json, summary.json, metrics.npz.
    """
    c = default_config()
    c.dataset_options.num_train = 500
    c.rf = ml_collections.ConfigDict({
        "feature_ratios": [0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0],
        "seeds": [0, 1], "block": 128})
    c.model = "mlp"
    c.model_options.width = 16  # replaced by each entry of ``widths``
    c.model_options.depth = 1
    c.widths = [2, 4, 8, 12, 16, 24, 32, 64, 128, 256]
    c.label_noise = [0.0, 0.2]  # random_label_fraction values, vmapped with the seeds
    c.interpolation_tolerance = 0.01  # train error counted as interpolation
    c.optimizer = "adam"
    c.batch_size = 0
    c.steps = 2000
    c.eval_every = 500
    c.seeds = [0, 1]
    c.learning_rates = [3e-3]
    return c


def main(config, run):
    return double_descent.run(config, run)
