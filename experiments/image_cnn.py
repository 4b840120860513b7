"""Module 1: the 2D CNN and the batch-norm ResNet on small images (digits by default)."""

from dl_course import configs
from dl_course.studies import image_cnn
from dl_course.train import default_config

VARIANTS = {
    # a GPU: CIFAR-10 through tfds (prepare it first: dl-course prepare tfds:cifar10), wider nets, shifts + flips
    "paper_scale": {"train.dataset": "tfds:cifar10", "train.steps": 20000, "train.batch_size": 128,
                    "train.eval_every": 1000, "steps_by_model": {"cnn2d": 20000, "resnet": 20000},
                    "model_options_by_model": {"cnn2d": {"channels": (64, 128), "hidden": 256},
                                               "resnet": {"stage_channels": (64, 128, 256), "norm": True}},
                    "augment": True, "augment_options": {"image": {"max_shift": 4, "flip": True},
                                                         "mnist1d": {"max_shift": 4, "noise": 0.1}}},
}

GALLERY = {
    "section": "Module 1 — fundamentals and CNNs", "order": 4,
    "title": "Image CNNs",
    "figures": ["learning_curves.png", "confusion.png"],
    "shows": "LeNet-style CNN and a batch-norm ResNet on the 8×8 digits, 3 seeds each; batch statistics in the state, "
             "all metrics in eval mode (running statistics)",
    "ours": "test accuracy CNN {test_accuracy_cnn2d:.3f} ± {test_accuracy_std_cnn2d:.3f}, ResNet "
            "{test_accuracy_resnet:.3f} ± {test_accuracy_std_resnet:.3f}; ResNet with train-mode BN on test batches "
            "{bn_test_accuracy_train_mode:.3f}; engine vs host re-computation of the eval-mode accuracy: "
            "{max_abs_engine_vs_host_eval_accuracy:.0e}",
    "paper": "LeCun et al. 1998 (CNN), He et al. 2016 (ResNet), Ioffe & Szegedy 2015 (BN: eval mode uses the running "
             "statistics)",
}


def get_config(variant=None):
    """LeNet-style CNN and a 3-stage ResNet with batch norm on the 8x8 digits, 3 seeds each.

    Command: ``dl-course run image_cnn`` (``--config.train.dataset=tfds:cifar10`` once prepared,
    ``--config.augment=True`` for random shifts; ``--config.augment_options.image.flip=True`` for
    natural images; ``dl-course run image_cnn:paper_scale`` for CIFAR-10 on a GPU).
    Runtime: about 2 minutes of CPU time (110 s user + sys; 104 s of wall time on 2 cores shared
    with another reference run and the test suite; two compiled programs; convolutions sliced on
    CPU).
    Expected (reference run of 2026-12-07, epoch orders by index_shuffle): both reach about 97-99%
    test accuracy on digits (CNN 97.1%, ResNet 98.5%, 3 seeds); the confusion matrix is nearly
    diagonal; the ResNet's eval-mode (running-statistics) accuracy equals the host re-computation,
    and its train-mode-BN test accuracy is close but not identical.
    Writes: learning_curves.png, confusion.png, config.json, summary.json, metrics.npz.
    """
    t = default_config()
    t.dataset = "digits"
    t.model = "cnn2d"
    t.model_options = {}
    t.optimizer = "adam"
    t.learning_rates = [1e-3]
    t.seeds = [0, 1, 2]
    t.steps = 1500
    t.batch_size = 64
    t.eval_every = 50
    c = configs.study_config(
        t, models=["cnn2d", "resnet"],
        model_options_by_model={"cnn2d": {"channels": (16, 32), "hidden": 128},
                                "resnet": {"stage_channels": (16, 32, 64), "norm": True}},
        steps_by_model={"cnn2d": 1500, "resnet": 400}, augment=False,
        augment_options={"image": {"max_shift": 1, "flip": False}, "mnist1d": {"max_shift": 4, "noise": 0.1}})
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return image_cnn.run(config, run)
