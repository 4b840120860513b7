"""Measures of trained networks: curvature, spectra, sharpness, margins, norms, loss landscapes.

Every measure takes ``loss_fn(params) -> scalar`` (closing over its data) or plain arrays, runs a
fixed amount of work, and works under ``jax.vmap`` over a leading run axis of ``params`` (and of
``key``), so one call measures every run of a sweep. Sub-packages (each with its own ``__all__``;
every public name is also importable from here):

* ``curvature``: Hessian / Gauss–Newton / Fisher products and operators, Lanczos and power
  iteration, spectra, traces (Hutchinson, Hutch++, XTrace), SLQ densities, per-layer blocks,
  K-FAC, damped solves, preconditioned sharpness, outlier counts.
* ``sharpness``: λmax and batch sharpness, worst-case sharpness (ε-box, SAM/ASAM, m-sharpness),
  PAC-Bayes / worst-case flatness radii, a λmax tracker for training.
* ``landscape``: 1D/2D slices, interpolations, trajectory projections, two-solution comparisons.
* ``generalization``: norms, margins, the complexity measures of Jiang et al. (2020), gradient
  noise, the measure suite, Kendall τ / Ψ / CMI and their confidence intervals, the measures of a
  sweep's final solutions, memorization.
* ``implicit_bias``: max-margin directions, modified flows of GD and SGD, the central flow,
  label-noise SGD.
* ``statistics``: confidence intervals over seeds, confusion matrices.
"""

from dl_course.measures.curvature import *
from dl_course.measures.generalization import *
from dl_course.measures.implicit_bias import *
from dl_course.measures.landscape import *
from dl_course.measures.sharpness import *
from dl_course.measures.statistics import *

__all__ = [  # the public names of the sub-packages above that this package re-exports
    "BackwardErrorResult", "CITest", "CentralFlowResult", "EigenResult", "GENERALIZATION_MEASURES", "KFACEigen",
    "KFACFactors", "LanczosResult", "LayerNorms", "MEASURE_FAMILIES", "MeasureConfig", "MeasureContext", "MeasureRun",
    "PerturbationRadius", "PowerIterationResult", "RobustSignError", "SGDModifiedLoss", "SGDOrderResult", "SLQResult",
    "SharpnessTrackerState", "WorstCase", "adam_preconditioner", "adam_stability_threshold", "adaptive_sharpness",
    "all_orders", "backward_error", "batch_sharpness", "block_operator", "bootstrap_psi", "bootstrap_tau",
    "bottom_eigenvalues", "captured_fraction", "central_flow", "central_flow_velocity", "cg_solve",
    "cluster_resamples", "compare_solutions", "conditional_mutual_information", "conditional_mutual_information_table",
    "confusion_matrix", "correlation_table", "corrupted_fraction", "count_outliers", "cross_entropy_ggn_vp",
    "dataset_fisher_vp", "dataset_ggn_vp", "dataset_hvp", "dataset_mean", "dataset_metrics_fn", "direction_measures",
    "directional_batch_sharpness", "dist_spec_init", "distance_from_init", "ekfac_eigenvalues", "empirical_fisher_vp",
    "epsilon_sharpness", "exact_diagonal", "expected_increase", "expected_outliers", "extreme_ritz_pairs",
    "filter_normalize", "filter_normalized_direction", "find_adam_state", "fisher_rao_norm", "flat_operator",
    "fro_dist", "fro_over_spec", "frobenius_norm", "gaussian_density", "gd_ladder", "gd_stability_threshold",
    "gd_trajectory", "generalization_gap", "generalization_measures", "ggn_vp", "gradient_flow", "gradient_flows",
    "gradient_noise", "granulated_psi", "hessian_and_ggn_spectra", "hessian_block_operator", "hessian_diagonal",
    "hessian_directions", "hessian_eigenpairs", "hessian_operator", "hessian_trace", "hoeffding_weight",
    "homogeneous_normalized_margin", "hutchinson_diagonal", "hutchinson_frobenius_sq", "hutchinson_trace", "hutchpp",
    "hutchpp_trace", "hvp", "interpolate", "inverse_margin", "kendall_tau", "kfac_eigen", "kfac_eigenvalues",
    "kfac_factors", "kfac_inverse_operator", "kfac_operator", "kfac_solve", "kfac_spectral_apply",
    "kfac_top_eigenvector", "lambda_max", "lanczos", "layer_eigenpairs", "layer_frobenius_norms", "layer_matrices",
    "layer_norms", "layer_spectral_densities", "layer_spectral_norms", "layer_top_eigenvalues", "layer_traces",
    "log_prod_of_fro", "log_prod_of_fro_over_margin", "log_prod_of_spec", "log_prod_of_spec_over_margin",
    "log_spec_init_main", "log_spec_orig_main", "log_sum_of_fro", "log_sum_of_fro_over_margin", "log_sum_of_spec",
    "log_sum_of_spec_over_margin", "m_sharpness", "margin_normalizer", "max_margin_directions", "mean_sgd_epoch",
    "measure_solutions", "measurement_conventions", "modified_loss", "mse_ggn_vp", "multiclass_margins",
    "norm_growth_rate", "normalized_margins", "num_parameters", "operator_diagonal", "operator_eigenpairs",
    "operator_frobenius_sq", "operator_hutchpp_trace", "operator_layer_traces", "operator_power_iteration",
    "operator_spectral_density", "operator_trace", "operator_xtrace", "outlier_gap", "output_margin", "pacbayes_bound",
    "pacbayes_mag_bound", "pacbayes_sigma", "paired_differences", "param_norm", "path_norm", "path_norm_over_margin",
    "path_norm_sq", "pca_directions", "power_iteration", "preconditioned_operator", "preconditioned_sharpness",
    "project_psd", "project_trajectory", "psi_by_axis", "random_direction", "replicate_tau", "residual_norm",
    "ritz_vectors", "robust_sign_error", "sam_sharpness", "sdcp_residuals", "sgd_backward_error", "sgd_epoch",
    "sgd_modified_loss", "sgd_modified_loss_terms", "sharpness_along", "sharpness_alpha", "sharpness_tracker",
    "slice_1d", "slice_2d", "slq", "solve_sdcp", "spearman_with_ci", "spectral_complexity", "spectral_density",
    "split_half_tau", "stack_directions", "steps_to_fit", "sym_to_vec", "third_derivative_terms", "time_average",
    "top_eigenvalues", "vec_to_sym", "vmapped_generalization_measures", "worst_case_increase", "xtrace",
    "xtrace_estimate",
]
