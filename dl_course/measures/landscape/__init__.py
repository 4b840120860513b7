"""Loss landscapes (Li et al. 2018): slices and interpolations around trained solutions.

* ``slices``: interpolations and 1D/2D slices along random, filter-normalized, PCA and Hessian
  directions; trajectories projected on them.
* ``comparison``: two solutions' filter-normalized slices and the straight path between them.
"""

from dl_course.measures.landscape.comparison import compare_solutions, dataset_metrics_fn
from dl_course.measures.landscape.slices import (
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

__all__ = [
    # comparison
    "compare_solutions", "dataset_metrics_fn",
    # slices
    "captured_fraction", "filter_normalize", "filter_normalized_direction", "hessian_directions", "interpolate",
    "pca_directions", "project_trajectory", "random_direction", "slice_1d", "slice_2d", "stack_directions",
]
