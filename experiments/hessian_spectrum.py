"""Sagun et al. 2017 / Papyan 2019: the Hessian of a trained classifier is a bulk near zero plus about C outliers."""

import ml_collections

from dl_course.studies import hessian_spectrum
from dl_course.train import default_config


def get_config():
    """A 40-100-100-10 ReLU MLP (15k parameters) on MNIST-1D, SGD, 2 seeds; spectra at 4 snapshots.

    Command: ``dl-course run hessian_spectrum`` (reference run: ``--workdir results/hessian_spectrum``).
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
    Paper scale (GPU): ``--config.model_options.width=512 --config.steps=20000
    --config.measure.examples=4000 --config.measure.lanczos_iters=200 --config.measure.slq_iters=200``.
    Writes: spectrum.png, config.json, summary.json (runs: one per seed and snapshot), metrics.npz.
    """
    c = default_config()
    c.dataset = "mnist1d"
    c.dataset_options.num_train = 4000  # all of MNIST-1D's training set
    c.model = "mlp"
    c.model_options = ml_collections.ConfigDict({"width": 100, "depth": 2, "activation": "relu"})
    c.loss = "cross_entropy"
    c.optimizer = "sgd"
    c.batch_size = 128
    c.steps = 3000
    c.eval_every = 100
    c.seeds = [0, 1]
    c.learning_rates = [0.1]
    c.snapshot_steps = [0, 100, 1000, 3000]
    c.num_snapshots = 4  # used when snapshot_steps is empty: log-spaced, initialization included
    c.measure = ml_collections.ConfigDict({
        "examples": 2000, "top_k": 24, "lanczos_iters": 80, "trace_samples": 100,
        "slq_probes": 8, "slq_iters": 80, "density_points": 1024, "seed": 0})
    return c


def main(config, run):
    return hessian_spectrum.run(config, run)
