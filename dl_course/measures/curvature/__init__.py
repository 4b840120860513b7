"""Curvature of the loss: operators, Krylov methods, spectra, traces, blocks, K-FAC, solves.

* ``products``: Hessian / Gauss–Newton / empirical-Fisher vector products, per batch or accumulated
  over a dataset (independent of the batch split).
* ``operators``: pytree operators, their flat-vector form (``flat_operator``, ``on_flat``) and the
  Hessian operator.
* ``krylov``: Lanczos with full reorthogonalization, block Krylov, power iteration with deflation.
* ``spectrum``: top-/bottom-k eigenpairs of the Hessian or any operator, with Ritz residuals.
* ``trace``: Hutchinson, Hutch++ and XTrace traces; Hutchinson / exact diagonals; Frobenius norms.
* ``density``: spectral density by stochastic Lanczos quadrature (SLQ).
* ``blocks``: per-layer traces, eigenvalues and densities of the Hessian's diagonal blocks.
* ``kfac`` (+ ``kfac_conv``): K-FAC / EK-FAC of Dense and Conv layers; ``solves``: damped
  inverse-curvature solves by CG and K-FAC.
* ``preconditioned``: Adam's preconditioner, preconditioned sharpness, stability thresholds.
* ``outliers``: Hessian vs Gauss–Newton top spectra and their outlier counts.
"""

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
from dl_course.measures.curvature.kfac_conv import conv_patches
from dl_course.measures.curvature.krylov import (
    LanczosResult,
    PowerIterationResult,
    RitzResult,
    block_krylov,
    extreme_ritz_pairs,
    lanczos,
    power_iteration,
    ritz_vectors,
)
from dl_course.measures.curvature.operators import Operator, flat_operator, hessian_operator, on_flat, pytree_form
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
    DEFAULT_HVP_METHOD,
    HVP_METHODS,
    cross_entropy_ggn_vp,
    dataset_fisher_vp,
    dataset_ggn_vp,
    dataset_hvp,
    dataset_mean,
    empirical_fisher_vp,
    ggn_vp,
    hessian_vector_operator,
    hvp,
    linearized_hvp,
    mse_ggn_vp,
)
from dl_course.measures.curvature.solves import cg_solve, kfac_solve, residual_norm
from dl_course.measures.curvature.spectrum import (
    DEFAULT_NUM_ITERS,
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

__all__ = [
    # blocks
    "block_operator", "hessian_block_operator", "layer_eigenpairs", "layer_spectral_densities",
    "layer_top_eigenvalues", "layer_traces", "operator_layer_traces",
    # density
    "SLQResult", "gaussian_density", "operator_spectral_density", "slq", "spectral_density",
    # kfac
    "KFACEigen", "KFACFactors", "ekfac_eigenvalues", "kfac_eigen", "kfac_eigenvalues", "kfac_factors",
    "kfac_inverse_operator", "kfac_operator", "kfac_spectral_apply", "kfac_top_eigenvector",
    # kfac_conv
    "conv_patches",
    # krylov
    "LanczosResult", "PowerIterationResult", "RitzResult", "block_krylov", "extreme_ritz_pairs", "lanczos",
    "power_iteration", "ritz_vectors",
    # operators
    "Operator", "flat_operator", "hessian_operator", "on_flat", "pytree_form",
    # outliers
    "count_outliers", "expected_outliers", "hessian_and_ggn_spectra", "outlier_gap",
    # preconditioned
    "adam_preconditioner", "adam_stability_threshold", "find_adam_state", "gd_stability_threshold",
    "preconditioned_operator", "preconditioned_sharpness",
    # products
    "DEFAULT_HVP_METHOD", "HVP_METHODS", "cross_entropy_ggn_vp", "dataset_fisher_vp", "dataset_ggn_vp",
    "dataset_hvp", "dataset_mean", "empirical_fisher_vp", "ggn_vp", "hessian_vector_operator", "hvp",
    "linearized_hvp", "mse_ggn_vp",
    # solves
    "cg_solve", "kfac_solve", "residual_norm",
    # spectrum
    "DEFAULT_NUM_ITERS", "EigenResult", "bottom_eigenvalues", "hessian_eigenpairs", "operator_eigenpairs",
    "operator_power_iteration", "top_eigenvalues",
    # trace
    "exact_diagonal", "hessian_diagonal", "hessian_trace", "hutchinson_diagonal", "hutchinson_frobenius_sq",
    "hutchinson_trace", "hutchpp", "hutchpp_trace", "operator_diagonal", "operator_frobenius_sq",
    "operator_hutchpp_trace", "operator_trace", "operator_xtrace", "xtrace", "xtrace_estimate",
]
