"""Barrett & Dherin 2021: GD follows the modified flow of L + (η/4)||∇L||² to O(η²), the gradient flow to O(η)."""

from dl_course import configs
from dl_course.studies import igr
from dl_course.train import default_config

VARIANTS = {
    # For a GPU: a wider, deeper network on more data and a 7-rung ladder (a 64x range of step sizes).
    "paper_scale": {"train.dataset_options.n_train": 512, "train.dataset_options.dim": 16,
                    "train.model_options.width": 256, "train.model_options.depth": 2, "eta_max": 0.1, "num_etas": 7},
}

GALLERY = {
    "section": "Module 2 — training dynamics and generalization", "order": 2,
    "title": "Implicit gradient regularization (Barrett & Dherin 2021)",
    "figures": ["backward_error.png"],
    "shows": "GD on a 4-16-1 tanh MLP (float64) for T = 4, η = 0.2 … 0.0125, against diffrax (Dopri8) "
             "integrations of the gradient flow and of the modified flow L + (η/4)‖∇L‖²",
    "ours": "slopes {slope_gradient_flow:.2f} (gradient flow) and {slope_modified_flow:.2f} (modified flow)",
    "paper": "1 and 2",
}


def get_config(variant=None):
    """Backward error analysis of full-batch GD on a 4-16-1 tanh MLP (97 params, 32 teacher examples).

    GD runs for time T = num_records * eta_max with a factor-2 ladder of step sizes
    eta_max / 2^k (k < num_etas), all in one vmapped program; the gradient flow of L and the
    modified flows of L + (eta/4)||grad L||^2 (one per eta) are integrated by diffrax (Dopri8,
    adaptive steps at flow_rtol / flow_atol, vmapped over the flows), in float64. The log-log
    slope of the distance at T vs eta is fitted over the ladder. The network and data are the
    engine config ``config.train`` (parameters initialised from its first seed); the ladder and
    tolerances are study keys.

    Command: ``dl-course run implicit_gradient_regularization``; on a GPU
    ``dl-course run implicit_gradient_regularization:paper_scale`` (see VARIANTS).
    Runtime: about 20-30 s of CPU time on 2 cores (mostly compilation).
    Expected: slope_gradient_flow ~ 1 and slope_modified_flow ~ 2 (paper: 1 and 2); every
    modified-flow distance far above the integration error estimate.
    Writes: backward_error.png, config.json, summary.json, metrics.npz.
    """
    t = default_config()
    t.dataset = "teacher"
    t.dataset_options.n_train = 32
    t.dataset_options.n_test = 8
    t.dataset_options.dim = 4
    t.model = "mlp"
    t.model_options.width = 16
    t.model_options.depth = 1
    t.model_options.activation = "tanh"
    t.loss = "mse"
    t.batch_size = 0
    t.seeds = [0]
    t.dtype = "float64"
    c = configs.study_config(t, eta_max=0.2, num_etas=5, num_records=20, flow_rtol=1e-12, flow_atol=1e-14)
    return configs.select_variant(c, variant, VARIANTS)


def main(config, run):
    return igr.run(config, run)
