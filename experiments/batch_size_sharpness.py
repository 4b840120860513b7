"""Keskar et al. 2017 / Jastrzębski et al. 2017 / Li et al. 2018: small- vs large-batch SGD,
sharpness, flatness and the loss landscape on MNIST-1D."""

import ml_collections

from dl_course.studies import batch_size_sharpness
from dl_course.train import default_config


def get_config():
    """Batch sizes 10, 50, 250 and full batch (n = 1000), each a 2 seeds x 4 learning rates sweep.

    Command: ``dl-course run batch_size_sharpness`` (reference run: ``--workdir results/batch_size_sharpness``).
    Runtime: about 4 CPU-minutes (2 cores): 4 sweeps of a 40-128-128-10 MLP on 1000 MNIST-1D
    examples, each batch size trained for max(50 epochs, 1500 steps), then λmax (Lanczos, 20 HVPs)
    and the Hessian trace (Hutchinson, 20 probes) of all 32 solutions in one vmapped program.
    Expected: every run fits the training set (100% train accuracy); small batches end flatter —
    λmax and the Hessian trace fall by an order of magnitude from B = n to B = 10 and decrease
    with η/B across all batch sizes — and test accuracy rises by a few points as the batch shrinks
    (Keskar et al.: LB is sharper and worse). The cross-entropy Hessian also shrinks as the loss
    falls, so the first panel plots λmax against the final training loss: at equal loss, smaller
    batches are still flatter. The filter-normalized slice of the large-batch solution is the
    sharper one; the interpolation between the solutions shows no barrier higher than the ends.
    Paper scale (GPU): ``--config.dataset_options.num_train=4000 --config.model_options.width=512
    --config.batch_sizes='[16, 64, 256, 1024, 0]' --config.seeds='[0,1,2,3]' --config.epochs=200
    --config.measure.examples=4000 --config.measure.lanczos_iters=50 --config.measure.trace_samples=100``.
    Writes: sharpness_vs_batch_size.png, landscape.png, config.json, summary.json, metrics.npz.
    """
    c = default_config()
    c.dataset_options.num_train = 1000
    c.model = "mlp"
    c.model_options.width = 128
    c.model_options.depth = 2
    c.optimizer = "sgd"
    c.batch_sizes = [10, 50, 250, 0]  # 0: full batch (gradient descent)
    c.epochs = 50  # steps per batch size: max(epochs * n / B, min_steps)
    c.min_steps = 1500
    c.steps = 1500  # replaced per batch size by the rule above
    c.eval_every = 100
    c.seeds = [0, 1]
    c.learning_rates = [0.025, 0.05, 0.1, 0.2]
    c.measure = ml_collections.ConfigDict({"examples": 1000, "lanczos_iters": 20, "trace_samples": 20, "seed": 0})
    c.landscape = ml_collections.ConfigDict({"seed": 0, "learning_rate": 0.1, "points": 41, "radius": 1.0,
                                             "interp_min": -0.5, "interp_max": 1.5})
    return c


def main(config, run):
    return batch_size_sharpness.run(config, run)
