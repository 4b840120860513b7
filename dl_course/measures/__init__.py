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
"""

from dl_course.measures.curvature import (
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
from dl_course.measures.density import (
    SLQResult,
    gaussian_density,
    operator_spectral_density,
    slq,
    spectral_density,
)
from dl_course.measures.landscape import (
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
from dl_course.measures.krylov import (
    LanczosResult,
    PowerIterationResult,
    extreme_ritz_pairs,
    lanczos,
    power_iteration,
    ritz_vectors,
)
from dl_course.measures.margins import (
    homogeneous_normalized_margin,
    margin_normalizer,
    multiclass_margins,
    normalized_margins,
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
from dl_course.measures.preconditioned import (
    adam_preconditioner,
    adam_stability_threshold,
    find_adam_state,
    gd_stability_threshold,
    preconditioned_operator,
    preconditioned_sharpness,
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
from dl_course.measures.spectrum import (
    EigenResult,
    bottom_eigenvalues,
    flat_operator,
    hessian_eigenpairs,
    hessian_operator,
    operator_eigenpairs,
    operator_power_iteration,
    top_eigenvalues,
)
from dl_course.measures.trace import hessian_trace, hutchinson_trace, operator_trace
from dl_course.measures.tracking import SharpnessTrackerState, sharpness_tracker
from dl_course.measures.modified_flow import (
    BackwardErrorResult,
    backward_error,
    gd_ladder,
    gradient_flows,
    modified_loss,
)
from dl_course.measures.landscape import captured_fraction
from dl_course.measures.implicit_bias import (
    direction_measures,
    max_margin_directions,
    norm_growth_rate,
)
from dl_course.measures.outliers import (
    count_outliers,
    expected_outliers,
    hessian_and_ggn_spectra,
    outlier_gap,
)
