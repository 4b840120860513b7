"""Generalization measures and how well they predict the gap (Jiang et al. 2020; Dziugaite et al. 2020).

* ``norms``, ``margins``: parameter norms, distance from init, margin distributions and normalized
  margins; ``complexity``: the norm/margin measures of Jiang et al.; ``gradient_noise``: the
  variance of minibatch gradients.
* ``suite``: the registry of measures (norm, margin, sharpness, flatness, optimization-based), one
  run at a time and vmapped.
* ``correlation``: Kendall τ, granulated Ψ, the CMI test and the robust sign-error;
  ``ranking_ci``: bootstrap and replicate confidence intervals of those rankings, Spearman's ρ
  with its CI.
* ``solutions``: λmax, trace and margins of every final solution of a sweep in one program;
  ``memorization``: steps to fit and corrupted fractions (Zhang et al. 2017).
"""

from dl_course.measures.generalization.complexity import (
    LayerNorms,
    dist_spec_init,
    fisher_rao_norm,
    fro_dist,
    fro_over_spec,
    inverse_margin,
    layer_norms,
    log_prod_of_fro,
    log_prod_of_fro_over_margin,
    log_prod_of_spec,
    log_prod_of_spec_over_margin,
    log_spec_init_main,
    log_spec_orig_main,
    log_sum_of_fro,
    log_sum_of_fro_over_margin,
    log_sum_of_spec,
    log_sum_of_spec_over_margin,
    num_parameters,
    output_margin,
    param_norm,
    path_norm_over_margin,
    path_norm_sq,
)
from dl_course.measures.generalization.correlation import (
    CITest,
    RobustSignError,
    conditional_mutual_information,
    conditional_mutual_information_table,
    correlation_table,
    granulated_psi,
    hoeffding_weight,
    kendall_tau,
    psi_by_axis,
    robust_sign_error,
)
from dl_course.measures.generalization.gradient_noise import gradient_noise
from dl_course.measures.generalization.margins import (
    homogeneous_normalized_margin,
    margin_normalizer,
    multiclass_margins,
    normalized_margins,
)
from dl_course.measures.generalization.memorization import corrupted_fraction, steps_to_fit
from dl_course.measures.generalization.norms import (
    distance_from_init,
    frobenius_norm,
    generalization_gap,
    layer_frobenius_norms,
    layer_matrices,
    layer_spectral_norms,
    path_norm,
    spectral_complexity,
)
from dl_course.measures.generalization.ranking_ci import (
    bootstrap_psi,
    bootstrap_tau,
    cluster_resamples,
    paired_differences,
    replicate_tau,
    spearman_with_ci,
    split_half_tau,
)
from dl_course.measures.generalization.solutions import measure_solutions, measurement_conventions
from dl_course.measures.generalization.suite import (
    GENERALIZATION_MEASURES,
    MEASURE_FAMILIES,
    MeasureConfig,
    MeasureContext,
    MeasureRun,
    generalization_measures,
    vmapped_generalization_measures,
)

__all__ = [
    # complexity
    "LayerNorms", "dist_spec_init", "fisher_rao_norm", "fro_dist", "fro_over_spec", "inverse_margin", "layer_norms",
    "log_prod_of_fro", "log_prod_of_fro_over_margin", "log_prod_of_spec", "log_prod_of_spec_over_margin",
    "log_spec_init_main", "log_spec_orig_main", "log_sum_of_fro", "log_sum_of_fro_over_margin", "log_sum_of_spec",
    "log_sum_of_spec_over_margin", "num_parameters", "output_margin", "param_norm", "path_norm_over_margin",
    "path_norm_sq",
    # correlation
    "CITest", "RobustSignError", "conditional_mutual_information", "conditional_mutual_information_table",
    "correlation_table", "granulated_psi", "hoeffding_weight", "kendall_tau", "psi_by_axis", "robust_sign_error",
    # gradient_noise
    "gradient_noise",
    # margins
    "homogeneous_normalized_margin", "margin_normalizer", "multiclass_margins", "normalized_margins",
    # memorization
    "corrupted_fraction", "steps_to_fit",
    # norms
    "distance_from_init", "frobenius_norm", "generalization_gap", "layer_frobenius_norms", "layer_matrices",
    "layer_spectral_norms", "path_norm", "spectral_complexity",
    # ranking_ci
    "bootstrap_psi", "bootstrap_tau", "cluster_resamples", "paired_differences", "replicate_tau",
    "spearman_with_ci", "split_half_tau",
    # solutions
    "measure_solutions", "measurement_conventions",
    # suite
    "GENERALIZATION_MEASURES", "MEASURE_FAMILIES", "MeasureConfig", "MeasureContext", "MeasureRun",
    "generalization_measures", "vmapped_generalization_measures",
]
