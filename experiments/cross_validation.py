"""k-fold cross-validation of the L2 penalty on a small MNIST-1D training set (MLP)."""

from dl_course import configs
from dl_course.studies import cross_validation
from dl_course.train import default_config

VARIANTS = {"paper_scale": {"per_class": 200, "k": 10, "train.seeds": [0, 1, 2, 3], "train.steps": 6000}}

GALLERY = {
    "section": "Module 1 — fundamentals and CNNs", "order": 2,
    "title": "Cross-validation",
    "figures": ["cv_curve.png"],
    "shows": "5-fold CV (folds vmapped) of 8 L2 penalties for a 40-100-100-10 MLP on 400 MNIST-1D examples, 2 seeds; "
             "CV error vs training time for early stopping",
    "ours": "CV picks l2 = {chosen:g} (CV error {chosen_cv_error:.3f}), whose test error {chosen_test_error:.3f} "
            "compares with the oracle's {oracle_test_error:.3f} (l2 = {oracle_l2:g}); one-SE rule: l2 = "
            "{one_se_choice:g}; early stopping of the unregularised net at step {early_stopping[chosen_step]} "
            "(test error {early_stopping[test_error]:.3f} vs {early_stopping[test_error_at_end]:.3f} at the end)",
    "paper": "Stone 1974; ESL 7.10: CV estimates the test curve (slightly pessimistic: each model sees (k-1)/k of "
             "the data) and picks a near-optimal penalty",
}


def get_config(variant=None):
    """5-fold CV of 8 L2 penalties for a 40-100-100-10 MLP on 400 MNIST-1D examples, 2 seeds.

    Command: ``dl-course run cross_validation``.
    Runtime: about 1 CPU-minute (54 s user + sys; 62 s of wall time on 2 cores shared with another
    reference run and the test suite; 6 sweeps of 16 runs, two compiled programs).
    Expected: the CV error curve falls then rises like the test curve, slightly above it (each CV
    model sees 80% of the data); the chosen penalty's test error is within about a point of the
    best candidate's (reference run of 2026-12-07, epoch orders by index_shuffle: CV picks 0.03, the
    oracle choice); CV error vs training steps picks an early-stopping time.
    Writes: cv_curve.png, config.json, summary.json (headline: k, chosen, candidates with
    cv_error_mean, cv_error_std, test_error), metrics.npz.
    """
    t = default_config()
    t.dataset = "mnist1d"
    t.model = "mlp"
    t.model_options.width = 100
    t.model_options.depth = 2
    t.optimizer = "adam"
    t.learning_rates = [1e-3]
    t.seeds = [0, 1]
    t.steps = 3000
    t.batch_size = 32
    t.eval_every = 250
    c = configs.study_config(t, per_class=40, subsample_seed=0, k=5, fold_seed=0,
                             l2_candidates=[0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1])
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return cross_validation.run(config, run)
