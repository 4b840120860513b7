"""Uncertainty quantification: posteriors, predictive distributions, calibration and OOD detection.

Every method yields a ``Predictive`` (per-sample logits ``[S, N, K]``), which every metric takes:

* ``swag``: SWA / SWAG-diagonal / SWAG moment collector (optax style) and ``swag_hook`` for the
  engine (Maddox et al. 2019); ``batchnorm.refresh_batch_stats`` for sampled weights;
* ``bma``: Bayesian model averaging over S posterior samples (default 30), ``swag_predictive``;
* ``ensembles``: deep ensembles as the seeds axis of a sweep (Lakshminarayanan et al. 2017);
* ``mc_dropout``: T stochastic passes, other layers in eval mode (Gal & Ghahramani 2016);
* ``temperature``: temperature scaling fitted on validation data (Guo et al. 2017);
* ``calibration``: accuracy, NLL (mean per example), Brier, ECE, reliability diagrams, entropies
  and mutual information;
* ``ood``: OOD scores (MSP, max logit, entropy, MI, energy) and AUROC / AUPR / FPR@95%TPR with
  OOD as the positive class;
* the evaluation sets live in ``dl_course.data``: ``shifted_mnist1d`` (MNIST-1D test sets under 4
  corruptions × 5 intensities), ``shifted_sets`` (shifted test sets per corruption and level, a
  validation split), ``ood_sets`` (held-out classes, noise inputs, tfds dataset pairs);
* ``laplace``: Laplace posteriors (diag / K-FAC / full GGN, all layers or last layer), prior
  precision by marginal likelihood; ``laplace_predictives``: probit, extended probit and MC
  predictives, validation-NLL prior choice, MultiLaplace (MacKay 1992; Daxberger et al. 2021).
"""

from dl_course.uncertainty import (
    batchnorm,
    bma,
    calibration,
    ensembles,
    mc_dropout,
    ood,
    predictive,
    swag,
    temperature,
)
from dl_course.uncertainty.batchnorm import refresh_batch_stats
from dl_course.uncertainty.bma import bayesian_model_average, swag_predictive
from dl_course.uncertainty.calibration import (
    accuracy,
    brier_score,
    expected_calibration_error,
    mutual_information,
    nll,
    reliability_diagram,
)
from dl_course.uncertainty.ensembles import ensemble_predict
from dl_course.uncertainty.mc_dropout import mc_dropout_predict
from dl_course.uncertainty.ood import detection_metrics, detection_table, ood_scores
from dl_course.uncertainty.predictive import Predictive, from_logits
from dl_course.uncertainty.swag import SWAGState, swag_hook
from dl_course.uncertainty.temperature import apply_temperature, fit_temperature

__all__ = [
    "batchnorm", "bma", "calibration", "ensembles", "mc_dropout", "ood", "predictive", "swag",
    "temperature",
    "Predictive", "from_logits", "SWAGState", "swag_hook", "refresh_batch_stats",
    "bayesian_model_average", "swag_predictive", "ensemble_predict", "mc_dropout_predict",
    "fit_temperature", "apply_temperature", "accuracy", "nll", "brier_score",
    "expected_calibration_error", "reliability_diagram", "mutual_information", "ood_scores",
    "detection_metrics", "detection_table",
]

# Members, shifted test sets and their evaluation (moved out of the studies); import explicitly:
# ``from dl_course.uncertainty import members, shift_evaluation, ood_benchmark``.
from dl_course.uncertainty import laplace, laplace_predictives
from dl_course.uncertainty.laplace import Laplace, fit_laplace, log_marginal_likelihood, optimize_prior_precision
from dl_course.uncertainty.laplace_predictives import (
    fit_multilaplace,
    laplace_predictive,
    multilaplace_predictive,
    select_prior_precision,
)

__all__ += [
    "laplace", "laplace_predictives", "Laplace", "fit_laplace", "log_marginal_likelihood",
    "optimize_prior_precision", "laplace_predictive", "fit_multilaplace", "multilaplace_predictive",
    "select_prior_precision",
]
