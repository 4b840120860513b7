"""Score-based generative modelling of 2D toy densities (Song et al. 2021, ICLR)."""

import ml_collections

from dl_course.studies import score_toy
from dl_course.train import default_config


def get_config():
    """A ScoreMLP (3 x 128, VP SDE) per toy dataset: samples, score field, PF-ODE density, NLL.

    Command: ``dl-course run score_toy`` (e.g. ``--config.seeds=[0,1,2]``, ``--config.steps=10000``,
    ``--config.sde=ve --config.sde_options="{'sigma_max': 10.0}"``).
    Runtime: about 4 minutes of CPU time on 2 cores (measured 250 s user+sys: 3 datasets x 4000
    Adam steps in one compiled program, 3 samplers x 2000 samples, NLL of 2000 test points and a
    48 x 48 density grid).
    Expected (reference run, seed 0): every sampler covers all 8 modes / the whole roll / both moons.
    MMD (data-vs-data floor 0.00 / 0.02 / 0.02 for mixture / roll / moons): Euler-Maruyama 0.03 /
    0.04 / 0.00, PC 0.05 / 0.10 / 0.04, PF-ODE (rk4, 100 steps) 0.12 / 0.05 / 0.01. Test NLL 2.76 /
    2.68 / 1.30 nats; the mixture's true NLL is 2.49, and the same ODE pipeline with the exact score
    gives 2.49 (the 0.27-nat gap is the learned score's, not the likelihood computation's). The
    colour scale of both density panels is the reference's maximum: the learned density is sharper
    than the (over-smoothed) KDE of the roll and moons.
    Writes: score_toy.png (samples / score field / learned density / true or KDE density per
    dataset), config.json, summary.json (one run per dataset x seed x sampler), metrics.npz.
    """
    c = default_config()
    c.dataset = "gaussian_mixture"           # unused by the study itself (it loops over ``datasets``)
    c.datasets = ["gaussian_mixture", "swiss_roll", "moons"]
    c.dataset_options = ml_collections.ConfigDict({"n_train": 5000, "n_test": 2000})
    c.sde = "vp"
    c.sde_options = ml_collections.ConfigDict()
    c.hidden_dims = [128, 128, 128]
    c.embed_dim = 64
    c.optimizer = "adam"
    c.steps = 4000
    c.batch_size = 256
    c.eval_every = 500
    c.eval_batch_size = 2000
    c.seeds = [0]
    c.learning_rates = [2e-3]
    c.samplers = ["euler_maruyama", "pc", "ode"]
    c.sample_steps = 500
    c.ode_steps = 100
    c.pc_snr = 0.16
    c.num_samples = 2000
    c.num_metric_samples = 1000
    c.num_projections = 256
    c.likelihood_eps = 1e-5
    c.likelihood_solver = "rk4"
    c.likelihood_steps = 100
    c.density_grid = 48
    c.field_time = 0.05
    c.plot_sampler = "ode"
    return c


def main(config, run):
    return score_toy.run(config, run)
