"""Measures of trained networks: curvature, spectra, sharpness, margins, norms, loss landscapes.

Every measure takes ``loss_fn(params) -> scalar`` (closing over its data) or plain arrays, runs a
fixed amount of work, and works under ``jax.vmap`` over a leading run axis of ``params`` (and of
``key``), so one call measures every run of a sweep. Modules:

* ``curvature``: Hessian / Gauss–Newton / empirical-Fisher vector products, per batch or
  accumulated over a dataset (independent of the batch split).
* ``krylov``: Lanczos with full reorthogonalization; power iteration with deflation.
* ``spectrum``: top-/bottom-k eigenpairs of the Hessian or any operator, with Ritz residuals.
* ``trace``: Hutchinson trace with its standard error. ``density``: SLQ spectral density.
* ``sharpness``: λmax, ε-sharpness, SAM/ASAM and m-sharpness, batch sharpness.
* ``preconditioned``: Adam's preconditioner and preconditioned sharpness; stability thresholds.
* ``margins`` and ``norms``: margin distributions, normalized margins, norms, distance from init.
* ``landscape``: interpolations and 1D/2D slices along random, filter-normalized, PCA and Hessian
  directions. ``tracking``: a training hook measuring λmax (warm-started) during a sweep.
* ``trace_estimators``: Hutch++, XTrace, Hutchinson / exact diagonals, Frobenius norms;
  ``blocks``: per-layer traces, eigenvalues, densities; ``kfac`` (+ ``kfac_conv``): K-FAC / EK-FAC
  of Dense and Conv layers; ``solves``: damped inverse-curvature solves by CG and K-FAC.
* ``complexity``, ``flatness``, ``gradient_noise``: the norm/margin, PAC-Bayes / worst-case /
  adaptive sharpness and gradient-noise measures of Jiang et al. (2020); ``generalization``: their
  registry, one run at a time and vmapped; ``correlation``: Kendall τ, granulated Ψ, the CMI test
  and the robust sign-error (Dziugaite et al. 2020).
* ``solutions``: λmax, trace and margins of every final solution of a sweep in one program;
  ``comparison``: two solutions' slices and interpolation; ``memorization``: steps to fit and
  corrupted fractions; ``outliers``: Hessian vs Gauss–Newton top spectra and outlier counts;
  ``implicit_bias``: directions and margins of linear iterates against the max-margin solutions
  (``max_margin_solvers``); ``modified_flow``: backward error of GD against the gradient and
  modified flows (diffrax); ``classification``: confusion matrices.
"""

from dl_course.measures.central_flow import (
    CentralFlowResult,
    central_flow,
    central_flow_velocity,
    gd_trajectory,
    gradient_flow,
    sharpness_along,
    third_derivative_terms,
    time_average,
)
from dl_course.measures.classification import confusion_matrix
from dl_course.measures.comparison import compare_solutions, dataset_metrics_fn
from dl_course.measures.complementarity import project_psd, sdcp_residuals, solve_sdcp, sym_to_vec, vec_to_sym
from dl_course.measures.complexity import (
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
from dl_course.measures.correlation import (
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
from dl_course.measures.curvature.blocks import (
    block_operator,
    hessian_block_operator,
    layer_eigenpairs,
    layer_spectral_densities,
    layer_top_eigenvalues,
    layer_traces,
    operator_layer_traces,
)
from dl_course.measures.curvature.density import (
    SLQResult,
    gaussian_density,
    operator_spectral_density,
    slq,
    spectral_density,
)
from dl_course.measures.curvature.kfac import (
    KFACEigen,
    KFACFactors,
    ekfac_eigenvalues,
    kfac_eigen,
    kfac_eigenvalues,
    kfac_factors,
    kfac_inverse_operator,
    kfac_operator,
    kfac_spectral_apply,
    kfac_top_eigenvector,
)
from dl_course.measures.curvature.krylov import (
    LanczosResult,
    PowerIterationResult,
    extreme_ritz_pairs,
    lanczos,
    power_iteration,
    ritz_vectors,
)
from dl_course.measures.curvature.operators import flat_operator, hessian_operator
from dl_course.measures.curvature.outliers import (
    count_outliers,
    expected_outliers,
    hessian_and_ggn_spectra,
    outlier_gap,
)
from dl_course.measures.curvature.preconditioned import (
    adam_preconditioner,
    adam_stability_threshold,
    find_adam_state,
    gd_stability_threshold,
    preconditioned_operator,
    preconditioned_sharpness,
)
from dl_course.measures.curvature.products import (
    cross_entropy_ggn_vp,
    dataset_fisher_vp,
    dataset_ggn_vp,
    dataset_hvp,
    dataset_mean,
    empirical_fisher_vp,
    ggn_vp,
    hvp,
    mse_ggn_vp,
)
from dl_course.measures.curvature.solves import cg_solve, kfac_solve, residual_norm
from dl_course.measures.curvature.spectrum import (
    EigenResult,
    bottom_eigenvalues,
    hessian_eigenpairs,
    operator_eigenpairs,
    operator_power_iteration,
    top_eigenvalues,
)
from dl_course.measures.curvature.trace import (
    exact_diagonal,
    hessian_diagonal,
    hessian_trace,
    hutchinson_diagonal,
    hutchinson_frobenius_sq,
    hutchinson_trace,
    hutchpp,
    hutchpp_trace,
    operator_diagonal,
    operator_frobenius_sq,
    operator_hutchpp_trace,
    operator_trace,
    operator_xtrace,
    xtrace,
    xtrace_estimate,
)
from dl_course.measures.flatness import (
    PerturbationRadius,
    adaptive_sharpness,
    expected_increase,
    pacbayes_bound,
    pacbayes_mag_bound,
    pacbayes_sigma,
    sharpness_alpha,
    worst_case_increase,
)
from dl_course.measures.generalization import (
    GENERALIZATION_MEASURES,
    MEASURE_FAMILIES,
    MeasureConfig,
    MeasureContext,
    MeasureRun,
    generalization_measures,
    vmapped_generalization_measures,
)
from dl_course.measures.gradient_noise import gradient_noise
from dl_course.measures.implicit_bias import (
    direction_measures,
    max_margin_directions,
    norm_growth_rate,
)
from dl_course.measures.landscape import (
    captured_fraction,
    filter_normalize,
    filter_normalized_direction,
    hessian_directions,
    interpolate,
    pca_directions,
    project_trajectory,
    random_direction,
    slice_1d,
    slice_2d,
    stack_directions,
)
from dl_course.measures.margins import (
    homogeneous_normalized_margin,
    margin_normalizer,
    multiclass_margins,
    normalized_margins,
)
from dl_course.measures.memorization import corrupted_fraction, steps_to_fit
from dl_course.measures.modified_flow import (
    BackwardErrorResult,
    backward_error,
    gd_ladder,
    gradient_flows,
    modified_loss,
)
from dl_course.measures.norms import (
    distance_from_init,
    frobenius_norm,
    generalization_gap,
    layer_frobenius_norms,
    layer_matrices,
    layer_spectral_norms,
    path_norm,
    spectral_complexity,
)
from dl_course.measures.ranking_ci import (
    bootstrap_psi,
    bootstrap_tau,
    cluster_resamples,
    paired_differences,
    replicate_tau,
    spearman_with_ci,
    split_half_tau,
)
from dl_course.measures.sgd_flows import SGDOrderResult, sgd_backward_error
from dl_course.measures.sgd_modified import (
    SGDModifiedLoss,
    all_orders,
    mean_sgd_epoch,
    sgd_epoch,
    sgd_modified_loss,
    sgd_modified_loss_terms,
)
from dl_course.measures.sharpness import (
    WorstCase,
    batch_sharpness,
    directional_batch_sharpness,
    epsilon_sharpness,
    lambda_max,
    m_sharpness,
    sam_sharpness,
)
from dl_course.measures.solutions import measure_solutions, measurement_conventions
from dl_course.measures.tracking import SharpnessTrackerState, sharpness_tracker

__all__ = [  # the public names, re-exported from the modules above
    "BackwardErrorResult", "CITest", "CentralFlowResult", "EigenResult", "GENERALIZATION_MEASURES", "KFACEigen",
    "KFACFactors", "LanczosResult", "LayerNorms", "MEASURE_FAMILIES", "MeasureConfig", "MeasureContext", "MeasureRun",
    "PerturbationRadius", "PowerIterationResult", "RobustSignError", "SGDModifiedLoss", "SGDOrderResult", "SLQResult",
    "SharpnessTrackerState", "WorstCase", "adam_preconditioner", "adam_stability_threshold", "adaptive_sharpness",
    "all_orders", "backward_error", "batch_sharpness", "block_operator", "bootstrap_psi", "bootstrap_tau",
    "bottom_eigenvalues", "captured_fraction", "central_flow", "central_flow_velocity", "cg_solve",
    "cluster_resamples", "compare_solutions", "conditional_mutual_information",
    "conditional_mutual_information_table", "confusion_matrix", "correlation_table", "corrupted_fraction",
    "count_outliers", "cross_entropy_ggn_vp", "dataset_fisher_vp", "dataset_ggn_vp", "dataset_hvp", "dataset_mean",
    "dataset_metrics_fn", "direction_measures", "directional_batch_sharpness", "dist_spec_init", "distance_from_init",
    "ekfac_eigenvalues", "empirical_fisher_vp", "epsilon_sharpness", "exact_diagonal", "expected_increase",
    "expected_outliers", "extreme_ritz_pairs", "filter_normalize", "filter_normalized_direction", "find_adam_state",
    "fisher_rao_norm", "flat_operator", "fro_dist", "fro_over_spec", "frobenius_norm", "gaussian_density",
    "gd_ladder", "gd_stability_threshold", "gd_trajectory", "generalization_gap", "generalization_measures", "ggn_vp",
    "gradient_flow", "gradient_flows", "gradient_noise", "granulated_psi", "hessian_and_ggn_spectra",
    "hessian_block_operator", "hessian_diagonal", "hessian_directions", "hessian_eigenpairs", "hessian_operator",
    "hessian_trace", "hoeffding_weight", "homogeneous_normalized_margin", "hutchinson_diagonal",
    "hutchinson_frobenius_sq", "hutchinson_trace", "hutchpp", "hutchpp_trace", "hvp", "interpolate", "inverse_margin",
    "kendall_tau", "kfac_eigen", "kfac_eigenvalues", "kfac_factors", "kfac_inverse_operator", "kfac_operator",
    "kfac_solve", "kfac_spectral_apply", "kfac_top_eigenvector", "lambda_max", "lanczos", "layer_eigenpairs",
    "layer_frobenius_norms", "layer_matrices", "layer_norms", "layer_spectral_densities", "layer_spectral_norms",
    "layer_top_eigenvalues", "layer_traces", "log_prod_of_fro", "log_prod_of_fro_over_margin", "log_prod_of_spec",
    "log_prod_of_spec_over_margin", "log_spec_init_main", "log_spec_orig_main", "log_sum_of_fro",
    "log_sum_of_fro_over_margin", "log_sum_of_spec", "log_sum_of_spec_over_margin", "m_sharpness",
    "margin_normalizer", "max_margin_directions", "mean_sgd_epoch", "measure_solutions", "measurement_conventions",
    "modified_loss", "mse_ggn_vp", "multiclass_margins", "norm_growth_rate", "normalized_margins", "num_parameters",
    "operator_diagonal", "operator_eigenpairs", "operator_frobenius_sq", "operator_hutchpp_trace",
    "operator_layer_traces", "operator_power_iteration", "operator_spectral_density", "operator_trace",
    "operator_xtrace", "outlier_gap", "output_margin", "pacbayes_bound", "pacbayes_mag_bound", "pacbayes_sigma",
    "paired_differences", "param_norm", "path_norm", "path_norm_over_margin", "path_norm_sq", "pca_directions",
    "power_iteration", "preconditioned_operator", "preconditioned_sharpness", "project_psd", "project_trajectory",
    "psi_by_axis", "random_direction", "replicate_tau", "residual_norm", "ritz_vectors", "robust_sign_error",
    "sam_sharpness", "sdcp_residuals", "sgd_backward_error", "sgd_epoch", "sgd_modified_loss",
    "sgd_modified_loss_terms", "sharpness_along", "sharpness_alpha", "sharpness_tracker", "slice_1d", "slice_2d",
    "slq", "solve_sdcp", "spectral_complexity", "spectral_density", "spearman_with_ci", "split_half_tau",
    "stack_directions",
    "steps_to_fit", "sym_to_vec", "third_derivative_terms", "time_average", "top_eigenvalues", "vec_to_sym",
    "vmapped_generalization_measures", "worst_case_increase", "xtrace", "xtrace_estimate",
]
