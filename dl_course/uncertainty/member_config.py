"""The ensemble members' set-up shared by the ``uncertainty`` and ``ood_detection`` studies: their
engine config, their study keys (SWAG, MC dropout, validation split, Laplace) and their variants.

It lives in the library so that both launchers read one definition; a launcher never imports the
CLI or another launcher.
"""

from __future__ import annotations

from dl_course.train import default_config
from dl_course.uncertainty.members import LAPLACE_DEFAULTS

VARIANTS = {
    # For a GPU: the 1D CNN of the MNIST-1D paper (94% test accuracy there), lr 0.05 (at the MLP's
    # 0.2 the CNN's final iterates are poor: 78% test accuracy per seed), 30 SWAG / MC-dropout
    # samples (Maddox et al. use 30), 4x longer training. On one H200 about 65 s; SGD reaches 94.6%.
    "paper_scale": {"train.model": "cnn1d", "train.model_options": {}, "train.learning_rates": [0.05],
                    "train.steps": 12000, "train.eval_every": 1000, "swag.num_samples": 30,
                    "mc_dropout.num_samples": 30},
}


def members_training():
    """The engine config of the members: a 40-256-256-10 MLP on MNIST-1D, SGD with momentum 0.9
    and weight decay 3e-3, lr 0.2 halved at half time, batch 128, 3000 steps, 5 seeds."""
    t = default_config()
    t.dataset = "mnist1d"
    t.model = "mlp"
    t.model_options.width = 256
    t.model_options.depth = 2
    t.optimizer = "momentum"
    t.optimizer_options.momentum = 0.9
    t.optimizer_options.weight_decay = 3e-3
    t.schedule = "step"
    t.schedule_options.boundaries = (0.5,)
    t.schedule_options.factor = 0.5
    t.steps = 3000
    t.batch_size = 128
    t.eval_every = 300
    t.seeds = [0, 1, 2, 3, 4]
    t.learning_rates = [0.2]
    return t


def member_keys() -> dict:
    """The study keys of the members: SWAG from 55% of training, one snapshot per epoch, K = 20,
    20 samples; MC dropout rate 0.2, 20 masks; 10% validation; Laplace:
    ``members.LAPLACE_DEFAULTS`` (last-layer K-FAC, evidence prior, probit predictive)."""
    return {"val_fraction": 0.1, "val_seed": 0, "eval_seed": 0,
            "swag": {"start_fraction": 0.55, "collect_every": 0, "num_deviations": 20, "num_samples": 20},
            "mc_dropout": {"rate": 0.2, "num_samples": 20}, "laplace": dict(LAPLACE_DEFAULTS)}
