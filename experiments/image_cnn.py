"""Module 1: the 2D CNN and the batch-norm ResNet on small images (digits by default)."""

import ml_collections

from dl_course.studies import image_cnn
from dl_course.train import default_config


def get_config():
    """LeNet-style CNN and a 3-stage ResNet with batch norm on the 8x8 digits, 3 seeds each.

    Command: ``dl-course run image_cnn`` (``--config.dataset=tfds:cifar10`` once prepared,
    ``--config.augment=True`` for random shifts; ``--config.augment_options.image.flip=True`` for
    natural images).
    Runtime: about 2 minutes on 2 CPU cores (two compiled programs; convolutions sliced on CPU).
    Expected: both reach about 97-99% test accuracy on digits; the confusion matrix is nearly
    diagonal; the ResNet's eval-mode (running-statistics) accuracy equals the host re-computation,
    and its train-mode-BN test accuracy is close but not identical.
    Writes: learning_curves.png, confusion.png, config.json, summary.json, metrics.npz.
    """
    c = default_config()
    c.dataset = "digits"
    c.models = ["cnn2d", "resnet"]
    c.model = "cnn2d"
    c.model_options = ml_collections.ConfigDict()
    c.model_options_by_model = ml_collections.ConfigDict({
        "cnn2d": {"channels": (16, 32), "hidden": 128},
        "resnet": {"stage_channels": (16, 32, 64), "norm": True},
    })
    c.optimizer = "adam"
    c.learning_rates = [1e-3]
    c.seeds = [0, 1, 2]
    c.steps_by_model = ml_collections.ConfigDict({"cnn2d": 1500, "resnet": 400})
    c.steps = 1500
    c.batch_size = 64
    c.eval_every = 50
    c.augment = False
    c.augment_options = ml_collections.ConfigDict({"image": {"max_shift": 1, "flip": False},
                                                   "mnist1d": {"max_shift": 4, "noise": 0.1}})
    c.conv_impl = "auto"
    return c


def main(config, run):
    return image_cnn.run(config, run)
