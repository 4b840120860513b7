"""Sagun et al. 2017 / Papyan 2019: the Hessian of a trained classifier is a bulk near zero plus about C outliers."""

import ml_collections

from dl_course import configs
from dl_course.studies import hessian_spectrum
from dl_course.train import default_config

VARIANTS = {
    # For a GPU: a wider network, longer training, all training examples, longer Lanczos runs.
    "paper_scale": {"train.model_options.width": 512, "train.steps": 20000, "measure.examples": 4000,
                    "measure.lanczos_iters": 200, "measure.slq_iters": 200},
}

GALLERY = {
    "section": "Measures — Hessian spectra, loss landscapes, generalization measures", "order": 0,
    "title": "Hessian spectrum (Sagun et al. 2017; Papyan 2019)",
    "figures": ["spectrum.png"],
    "shows": "40-100-100-10 ReLU MLP (15k parameters), cross-entropy, SGD, 2 seeds; at 4 snapshots of training: SLQ "
             "densities, top-24 eigenvalues of H and of its Gauss–Newton part G (Lanczos), λmin, Hutchinson traces, "
             "on 2000 training examples — all 8 (seed, step) points in one vmapped program",
    "ours": "at steps {by_snapshot[0][step]} and {by_snapshot[1][step]} the seeds show "
            "{by_snapshot[0][num_outliers_hessian]} "
            "and {by_snapshot[1][num_outliers_hessian]} outliers above the bulk, C − 1 = {expected_outliers} expected "
            "(gap λ9/λ10 = {by_snapshot[0][gap_after_expected]:.2f} / {by_snapshot[1][gap_after_expected]:.2f}, "
            "{by_snapshot[0][gap_after_expected_over_bulk]:.1f} / {by_snapshot[1][gap_after_expected_over_bulk]:.1f}× "
            "the spacing inside the bulk); G's top-9 match H's to ≤ {top_hessian_vs_ggn_rel_diff_max:.1%} (≤ "
            "{top_hessian_vs_ggn_rel_diff_max_after_init:.1%} after initialization): the outliers are G's. At step "
            "{by_snapshot[3][step]} (loss {by_snapshot[3][measure_loss]:.2f}, train accuracy "
            "{final_train_accuracy:.2f}) the top of the spectrum spreads into a continuum (gap "
            "{by_snapshot[3][gap_after_expected]:.2f}), λmax {by_snapshot[0][lambda_max]:.1f} → "
            "{lambda_max_final:.1f}, tr H {by_snapshot[0][hessian_trace]:.0f} → {hessian_trace_final:.0f}, λmin "
            "{lambda_min_final:.2f}; Lanczos relative residual ≤ {max_lambda_max_rel_residual:.1e}",
    "paper": "a bulk near zero and C − 1 outliers from the Gauss–Newton part (class means of the logit gradients)",
}


def get_config(variant=None):
    """A 40-100-100-10 ReLU MLP (15k parameters) on MNIST-1D, SGD, 2 seeds; spectra at 4 snapshots.

    Engine keys in ``config.train``; study keys: ``snapshot_steps`` (``num_snapshots`` log-spaced
    ones when empty) and the measurement sizes ``measure.*``.

    Command: ``dl-course run hessian_spectrum`` (reference run: ``--workdir results/hessian_spectrum``);
    on a GPU ``dl-course run hessian_spectrum:paper_scale`` (width 512, 20k steps, 4000 examples,
    200 Lanczos steps; see VARIANTS).
    Runtime: about 2.5 minutes on 2 CPU cores: one vmapped sweep of 2 seeds x 3000 SGD steps (batch
    128, lr 0.1, all 4000 training examples) recording the parameters at steps 0, 100, 1000 and
    3000; then one vmapped program measuring all 8 (seed, step) points on 2000 training examples:
    top-24 eigenpairs of the Hessian H and of its Gauss-Newton part G (Lanczos, 80 products each),
    the bottom eigenvalue of H, Hutchinson traces (100 probes) and SLQ densities (8 probes x 80
    steps) of both.
    Expected (cross-entropy, so C - 1 = 9 outliers are predicted): at initialization and after 100
    steps, 9 eigenvalues stand above the bulk for both seeds (the largest ratio gap among the top
    24 is lambda_9 / lambda_10 = 1.5-1.8), the bulk sits near zero and G's top-9 eigenvalues equal
    H's to within 4.5% at initialization and 0.6% from step 100 on (the outliers are G's,
    Papyan 2019). As the training loss falls (0.2 at step
    3000, 95% train accuracy) lambda_max grows from 2-4 to 13-16 and tr H from ~50 to ~330, the
    top of the spectrum spreads into a continuum and the gap after 9 fades (1.0-1.15);
    lambda_min stays small and negative (-0.1 to -0.6).
    Writes: spectrum.png, config.json, summary.json (runs: one per seed and snapshot), metrics.npz.
    """
    t = default_config()
    t.dataset = "mnist1d"
    t.dataset_options.num_train = 4000  # all of MNIST-1D's training set
    t.model = "mlp"
    t.model_options = ml_collections.ConfigDict({"width": 100, "depth": 2, "activation": "relu"})
    t.loss = "cross_entropy"
    t.optimizer = "sgd"
    t.batch_size = 128
    t.steps = 3000
    t.eval_every = 100
    t.seeds = [0, 1]
    t.learning_rates = [0.1]
    c = configs.study_config(
        t,
        snapshot_steps=[0, 100, 1000, 3000],
        num_snapshots=4,  # used when snapshot_steps is empty: log-spaced, initialization included
        measure={"examples": 2000, "top_k": 24, "lanczos_iters": 80, "trace_samples": 100,
                 "slq_probes": 8, "slq_iters": 80, "density_points": 1024, "seed": 0})
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return hessian_spectrum.run(config, run)
