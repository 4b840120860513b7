"""Li et al. 2018: filter-normalized 2D loss landscapes and the optimization path in its PCA plane."""

import ml_collections

from dl_course.studies import loss_landscape
from dl_course.train import default_config


def get_config():
    """A 40-100-100-10 ReLU MLP (15k parameters) on MNIST-1D trained by SGD at two learning rates.

    Command: ``dl-course run loss_landscape`` (reference run: ``--workdir results/loss_landscape``).
    Runtime: about 30-60 s on 2 CPU cores: one vmapped sweep (seed 0 x lr {0.02, 0.2}, 3000
    steps of batch 128 on the 4000 training examples) recording 31 evenly spaced parameter
    vectors; then one vmapped program evaluating, per run, two 31 x 31 grids (a filter-normalized
    random plane and the trajectory's PCA plane) on 2000 training examples.
    Expected (reference run): the random plane captures a negligible share of the displacement
    theta_0 - theta_T (< 3e-4), the PCA plane almost all of it (0.99), and the first two
    principal components explain 0.98 of the path's variance (Li et al. 2018: 40-90% on CIFAR
    nets; the path here is short and smooth). The path bends once and ends on the side of a
    valley, not at its bottom. Flatness needs equal training loss to compare: eta = 0.2 reaches
    loss 0.017 in a basin whose loss rises by 4.3 at |alpha| = 0.47, eta = 0.02 stops at loss 1.05
    on a wide slope (+0.6) -- the low-loss minimum looks sharper in log scale, as Dinh et al.
    (2017) and Li et al. warn.
    Paper scale (GPU): ``--config.model=resnet --config.dataset=tfds:cifar10`` is not supported
    (batch norm state is not recorded); use wider MLPs / the 1D CNN: ``--config.model=cnn1d
    --config.model_options="{'channels': (32, 32, 32)}" --config.measure.points=51``.
    Writes: landscape.png, config.json, summary.json, metrics.npz.
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
    c.seeds = [0]
    c.learning_rates = [0.02, 0.2]
    c.num_records = 31  # parameter vectors recorded, evenly spaced, initialization included
    c.measure = ml_collections.ConfigDict({
        "examples": 2000, "points": 31, "radius": 1.0, "pca_margin": 1.3, "batch_size": 64, "seed": 0})
    return c


def main(config, run):
    return loss_landscape.run(config, run)
