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
    "section": "Measures — Hessian spectra, loss landscapes, generalization measures", "order": 0, "compares": True,
    "title": "Hessian spectrum (Sagun et al. 2017; Papyan 2019)",
    "figures": ["spectrum.png"],
    "shows": "40-100-100-10 ReLU MLP (15k parameters), cross-entropy, SGD, 3 seeds, each stopped exactly at train CE "
             "0.01; at steps 0, 100, 1000, 3000 and at the stop: SLQ densities, top-24 eigenvalues of H and of its "
             "Gauss–Newton part G (Lanczos), λmin, Hutchinson traces, on 2000 training examples — all (seed, "
             "snapshot) points in one vmapped program; 95% t intervals over the seeds at the stop",
    "ours": "at steps {by_snapshot[0][step]} and {by_snapshot[1][step]} the seeds show "
            "{by_snapshot[0][num_outliers_hessian]} and {by_snapshot[1][num_outliers_hessian]} outliers above the "
            "bulk, C − 1 = {expected_outliers} expected (gap λ9/λ10 = {by_snapshot[0][gap_after_expected]:.2f} / "
            "{by_snapshot[1][gap_after_expected]:.2f}); G's top-9 match H's to ≤ "
            "{top_hessian_vs_ggn_rel_diff_max_after_init:.1%} after initialization: the outliers are G's. At step "
            "{by_snapshot[3][step]} (loss {by_snapshot[3][measure_loss]:.2f}) the top spreads into a continuum (gap "
            "{by_snapshot[3][gap_after_expected]:.2f}). At train CE {at_target[target_train_loss]:g} (exact stop after "
            "{at_target[steps_to_target]} steps, test accuracy {at_target[test_accuracy]:.2f}): outlier counts "
            "{at_target[num_outliers_hessian]}, gap λ9/λ10 {at_target[gap]:.2f} {at_target[gap_ci]:.2f} = "
            "{at_target[gap_over_bulk]:.2f} {at_target[gap_over_bulk_ci]:.2f}× the spacing inside the bulk — "
            "{at_target[verdict]}; tr G / tr H {at_target[ggn_trace_fraction]:.2f} "
            "{at_target[ggn_trace_fraction_ci]:.2f}, "
            "largest relative difference of H's and G's top-9 {at_target[top_hessian_vs_ggn_rel_diff]:.1e} "
            "{at_target[top_hessian_vs_ggn_rel_diff_ci]:.1e}: the top is G's; λmax {at_target[lambda_max]:.2f} "
            "{at_target[lambda_max_ci]:.2f}, λmin {at_target[lambda_min]:.3f} {at_target[lambda_min_ci]:.3f}",
    "paper": "a bulk near zero and C − 1 outliers from the Gauss–Newton part (class means of the logit gradients), "
             "in nets trained to (near) zero loss",
}


def get_config(variant=None):
    """A 40-100-100-10 ReLU MLP (15k parameters) on MNIST-1D, SGD, 3 seeds, each stopped exactly at
    train CE 0.01; spectra at steps 0, 100, 1000, 3000 and at the stop.

    Engine keys in ``config.train``; study keys: ``snapshot_steps`` (``num_snapshots`` log-spaced
    ones when empty) and the measurement sizes ``measure.*``. With ``train.target_train_loss`` > 0
    the stopped parameters are the last snapshot (headline ``at_target``); 0 turns that off (the
    final step is then the last snapshot).

    Command: ``dl-course run hessian_spectrum`` (reference run: ``--workdir results/hessian_spectrum``);
    on a GPU ``dl-course run hessian_spectrum:paper_scale`` (width 512, 20k steps, 4000 examples,
    200 Lanczos steps; see VARIANTS).
    Runtime: 242 s of CPU time (user + sys; 4.4 minutes of wall time on 2 cores shared with another
    reference run and the test suite): one vmapped sweep of 3 seeds (batch 128, lr 0.1, all 4000
    training examples) stopped at train loss 0.01 by the engine's exact stop (7279-7459 steps, final
    losses 0.00998-0.01000; reference run of 2026-12-07, epoch orders by index_shuffle),
    recording the parameters at steps 0, 100, 1000 and 3000; then one vmapped program measuring all
    15 (seed, snapshot) points on 2000 training examples: top-24 eigenpairs of the Hessian H and of
    its Gauss-Newton part G (Lanczos, 80 products each), the bottom eigenvalue of H, Hutchinson
    traces (100 probes) and SLQ densities (8 probes x 80 steps) of both.
    Expected (cross-entropy, so C - 1 = 9 outliers are predicted): at initialization 9 / 9 / 1 and
    after 100 steps 9 / 9 / 9 outliers (largest ratio gap lambda_9 / lambda_10 = 1.5-1.9); G's top-9
    equal H's to 4.5% at initialization and 0.9% from step 100 on. At step 3000 (loss 0.17) the
    top spreads into a continuum (counts 6 / 6 / 6, gap after 9 1.06). At train CE 0.01 (train
    accuracy 1.0, test 0.61; 95% t intervals over the 3 seeds): counts 6 / 6 / 6, not 9; the gap
    lambda_9 / lambda_10 is 1.23 [0.99, 1.47], 1.20 [0.96, 1.43] times the spacing inside the bulk:
    with 3 seeds a gap after the 9th eigenvalue is not resolved (both intervals reach 1), and it is
    weaker than the one after the 6th (lambda_6 / lambda_7 1.3-1.4), so there is no separated group
    of C - 1 outliers here; the SLQ density shows the top as separate islands (near 1.1-1.6,
    1.9-2.7, 2.9-3.6, 4.0-4.4, depending on the seed). The top of the spectrum is G's: top-9 of H
    and G equal to 1.3e-4 relative, tr G / tr H = 1.03 [0.97, 1.09], lambda_min -0.004 (the
    residual term E vanishes with the residuals p - y); lambda_max falls from 14 at step 3000
    (13.6-14.3) to 4.17 [3.93, 4.41] and tr H from ~330 to 89.
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
    t.steps = 20000  # a budget: every run stops at train CE 0.01 (about 7400 steps)
    t.eval_every = 100
    t.target_train_loss = 0.01  # the exact stop; the stopped parameters are the last snapshot
    t.seeds = [0, 1, 2]
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
