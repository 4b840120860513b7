"""Sharpness: the curvature along a direction (λmax, batch sharpness), the worst-case loss increase in
a neighbourhood (ε-box, SAM/ASAM ball, m-sharpness, adaptive), flatness radii, and tracking λmax
during training.

* ``directional``: λmax, batch sharpness, directional batch sharpness.
* ``worst_case``: ε-sharpness (Keskar et al. 2017), SAM/ASAM and m-sharpness, and the projected
  ascent they share (``projected_ascent``, ``box_sign_ascent``).
* ``flatness``: PAC-Bayes σ′ and worst-case α′ perturbation radii (Jiang et al. 2020), adaptive
  sharpness (Andriushchenko et al. 2023).
* ``tracking``: a training hook measuring λmax (warm-started block Krylov) during a sweep.
"""

from dl_course.measures.sharpness.directional import batch_sharpness, directional_batch_sharpness, lambda_max
from dl_course.measures.sharpness.flatness import (
    PerturbationRadius,
    adaptive_sharpness,
    expected_increase,
    pacbayes_bound,
    pacbayes_mag_bound,
    pacbayes_sigma,
    sharpness_alpha,
    worst_case_increase,
)
from dl_course.measures.sharpness.tracking import SharpnessTrackerState, sharpness_tracker
from dl_course.measures.sharpness.worst_case import (
    WorstCase,
    box_sign_ascent,
    epsilon_sharpness,
    m_sharpness,
    projected_ascent,
    sam_sharpness,
    worst_case_result,
)

__all__ = [
    # directional
    "batch_sharpness", "directional_batch_sharpness", "lambda_max",
    # flatness
    "PerturbationRadius", "adaptive_sharpness", "expected_increase", "pacbayes_bound", "pacbayes_mag_bound",
    "pacbayes_sigma", "sharpness_alpha", "worst_case_increase",
    # tracking
    "SharpnessTrackerState", "sharpness_tracker",
    # worst_case
    "WorstCase", "box_sign_ascent", "epsilon_sharpness", "m_sharpness", "projected_ascent", "sam_sharpness",
    "worst_case_result",
]
