"""k-fold cross-validation of the L2 penalty on a small MNIST-1D training set (MLP)."""

from dl_course.studies import cross_validation
from dl_course.train import default_config


def get_config():
    """5-fold CV of 8 L2 penalties for a 40-100-100-10 MLP on 400 MNIST-1D examples, 2 seeds.

    Command: ``dl-course run cross_validation``.
    Runtime: about 1-2 minutes on 2 CPU cores (6 sweeps of 16 runs, two compiled programs).
    Expected: the CV error curve is U-shaped or falls then rises like the test curve, slightly
    above it (each CV model sees 80% of the data); the chosen penalty's test error is within about
    a point of the best candidate's; CV error vs training steps picks an early-stopping time.
    Writes: cv_curve.png, config.json, summary.json (headline: k, chosen, candidates with
    cv_error_mean, cv_error_std, test_error), metrics.npz.
    """
    c = default_config()
    c.dataset = "mnist1d"
    c.model = "mlp"
    c.model_options.width = 100
    c.model_options.depth = 2
    c.per_class = 40
    c.subsample_seed = 0
    c.k = 5
    c.fold_seed = 0
    c.l2_candidates = [0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    c.optimizer = "adam"
    c.learning_rates = [1e-3]
    c.seeds = [0, 1]
    c.steps = 3000
    c.batch_size = 32
    c.eval_every = 250
    return c


def main(config, run):
    return cross_validation.run(config, run)
