"""Measuring the implicit bias of an optimizer on separable data along its trajectory ``w(t)``.

On linearly separable data the logistic loss of a linear model ``f(x) = wᵀx`` (no bias) has no
minimizer; which direction ``w(t)/‖w(t)‖`` the iterates approach is the optimizer's implicit bias:
the ℓ2 max-margin direction for GD, with ``‖w(t)‖ ≈ log(t)/γ*₂`` and an angle gap closing like
``1/log t`` (Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018, JMLR 19, Thm. 3); the ℓ∞ one for sign
descent (Gunasekar, Lee, Soudry & Srebro 2018, ICML) and for Adam while its ε is negligible (Zhang,
Zou & Cao 2024, NeurIPS). The exact directions come from ``max_margin_solvers``; these functions
compare a recorded trajectory with them (host-side, float64).
"""

from __future__ import annotations

import numpy as np

from dl_course.measures.implicit_bias import max_margin_solvers as mm


def max_margin_directions(x, y, *, rel_tol: float = 1e-9) -> dict:
    """Both max-margin solutions of ``(x, y)`` and whether the ℓ∞ maximizer is unique.

    Returns ``{"l2": MaxMarginSolution, "linf": MaxMarginSolution, "linf_unique": bool,
    "linf_spread": float, "cos_l2_linf": float}``. Uniqueness: the spread of the ℓ∞ optimal set
    (``mm.linf_optimal_set_spread``) must shrink about in proportion to the LP tolerance — below
    5% of its value at ``100 · rel_tol`` (a face keeps its width), or below 1e-6.
    """
    l2 = mm.l2_max_margin(x, y)
    linf = mm.linf_max_margin(x, y, rel_tol=rel_tol)
    loose = mm.linf_optimal_set_spread(x, y, linf.margin, rel_tol=100 * rel_tol)
    unique = bool(linf.spread < 0.05 * loose or linf.spread < 1e-6)
    return {"l2": l2, "linf": linf, "linf_unique": unique, "linf_spread": linf.spread,
            "cos_l2_linf": float(l2.direction @ linf.direction)}


def direction_measures(w, x, y, directions: dict) -> dict:
    """Per row of ``w`` (``[T, d]``, e.g. a recorded trajectory), in float64:

    ``norm = ‖w‖₂``; ``cos_l2``, ``cos_linf``: ``wᵀw*/‖w‖₂`` for the unit directions of
    :func:`max_margin_directions`; ``margin_l2``, ``margin_linf``: ``min_i s_i x_iᵀw / ‖w‖_p``;
    ``margin_ratio_l2``, ``margin_ratio_linf``: those over the max margins ``γ*_p`` (1 at the
    max-margin direction). Rows with ``w = 0`` give NaN cosines.
    """
    w = np.asarray(w, np.float64)
    norm = np.linalg.norm(w, axis=-1)
    safe = np.where(norm > 0, norm, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):  # w = 0 (the initialization): NaN margins
        m2 = mm.normalized_margin(w, x, y, ord=2)
        minf = mm.normalized_margin(w, x, y, ord=np.inf)
    return {"norm": norm, "cos_l2": (w @ directions["l2"].direction) / safe,
            "cos_linf": (w @ directions["linf"].direction) / safe, "margin_l2": m2, "margin_linf": minf,
            "margin_ratio_l2": m2 / directions["l2"].margin, "margin_ratio_linf": minf / directions["linf"].margin}


def norm_growth_rate(steps, norm, margin: float) -> float:
    """``γ*₂ · d‖w‖/d log t``, a least-squares fit over the last decade of ``steps``.

    Soudry et al. (2018): ``w(t) = ŵ log t + O(log log t)`` with ``‖ŵ‖ = 1/γ*₂`` for GD, so the
    rate → 1.
    """
    steps = np.asarray(steps, np.float64)
    sel = steps >= steps[-1] / 10
    return float(np.polyfit(np.log(steps[sel]), np.asarray(norm)[sel], 1)[0] * margin)


def last_change_step(steps, trajectory) -> int:
    """The last recorded step at which ``w`` had changed since the previous record (in float32,
    once every example's logistic gradient underflows, the iterate stops moving)."""
    moved = np.flatnonzero(np.any(np.diff(np.asarray(trajectory), axis=0) != 0, axis=1))
    return int(steps[moved[-1] + 1]) if moved.size else int(steps[0])


def first_step_above(steps, values, level: float):
    """The first recorded step from which ``values`` stay ``≥ level`` (None if the last is below)."""
    below = np.flatnonzero(~(np.asarray(values) >= level))
    if below.size == 0:
        return int(steps[0])
    return int(steps[below[-1] + 1]) if below[-1] + 1 < len(steps) else None
