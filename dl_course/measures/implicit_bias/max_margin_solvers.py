"""Exact max-margin directions of linearly separable data through the origin (host-side, float64).

For a linear classifier ``f(x) = wᵀx`` without bias, labels ``s_i ∈ {−1, +1}`` and signed inputs
``z_i = s_i x_i``, the max-margin direction for a norm ``‖·‖`` is

    w*_‖·‖ = argmax_{‖w‖ ≤ 1} min_i z_iᵀ w,      γ*_‖·‖ = its value (the max margin).

Two norms matter for the implicit bias of first-order methods on the logistic loss:

* ℓ2 (hard-margin SVM without bias): gradient descent and normalized GD converge in direction to
  it (Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018, "The Implicit Bias of Gradient Descent on
  Separable Data", JMLR 19; Nacson et al. 2019 for normalized GD).
* ℓ∞: steepest descent w.r.t. ℓ∞, i.e. sign descent, converges to it (Gunasekar, Lee, Soudry &
  Srebro 2018, "Characterizing Implicit Bias in Terms of Optimization Geometry", ICML, Thm. 5);
  so does Adam with a vanishing ε-effect (Zhang, Zou & Cao 2024, "The Implicit Bias of Adam on
  Separable Data", NeurIPS).

The ℓ2 problem ``min ½‖w‖² s.t. Zw ≥ 1`` is a *least-distance program*, solved exactly (finite
active-set termination) through non-negative least squares (Lawson & Hanson 1974, *Solving Least
Squares Problems*, ch. 23): with ``E = [Zᵀ; 1ᵀ]`` and ``f = (0, …, 0, 1)``, let
``u = argmin_{u ≥ 0} ‖Eu − f‖`` and ``r = Eu − f``; then ``w = −r[:d] / r[d]`` and the SVM dual
variables are ``α = u / (1 − 1ᵀu)`` (``w = Zᵀα``, ``α ≥ 0``, ``α_i (z_iᵀw − 1) = 0``).
The ℓ∞ problem is the linear program ``max γ s.t. Zw ≥ γ 1, −1 ≤ w ≤ 1`` (HiGHS via scipy). Its
maximizer may be non-unique (the margin is always unique); :func:`linf_optimal_set_spread`
measures the spread of the optimal face with ``2d`` further LPs so a study can tell.

These run on the host in numpy/scipy (they are reference solvers, not traced code).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class MaxMarginSolution(NamedTuple):
    """A max-margin solution for one norm.

    Attributes:
      direction: ``w* / ‖w*‖₂`` (unit Euclidean norm, so cosines with other directions are plain
        dot products).
      weights: ``w*`` scaled as the solver defines it: for ℓ2 the minimum-norm ``w`` with all
        margins ``≥ 1`` (so ``‖w‖₂ = 1/γ``); for ℓ∞ a maximizer with ``‖w‖∞ = 1``.
      margin: ``γ* = max_{‖w‖ ≤ 1} min_i z_iᵀw`` for the solver's norm.
      dual: non-negative multipliers of the margin constraints (support vectors are ``dual > 0``).
      spread: largest coordinate range ``max_j (max w_j − min w_j)`` over the (numerically) optimal
        set, for ℓ∞ with ``check_unique``; 0 for ℓ2 (strictly convex: always unique); ``nan`` if
        not measured.
    """

    direction: np.ndarray
    weights: np.ndarray
    margin: float
    dual: np.ndarray
    spread: float


def signed_inputs(x, y) -> np.ndarray:
    """``z_i = s_i x_i`` (float64, inputs flattened) with ``s_i = +1`` for ``y_i > 0`` and ``−1``
    otherwise, so labels in ``{0, 1}`` and in ``{−1, +1}`` both work."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    s = np.where(np.asarray(y).reshape(-1) > 0, 1.0, -1.0)
    return x * s[:, None]


def l2_max_margin(x, y) -> MaxMarginSolution:
    """The hard-margin SVM direction without bias, ``argmin ‖w‖₂ s.t. s_i x_iᵀw ≥ 1`` (module
    docstring: Lawson–Hanson least-distance programming through NNLS, exact up to rounding).

    Raises:
      ValueError: if the data is not linearly separable through the origin.
    """
    from scipy.optimize import nnls

    z = signed_inputs(x, y)
    n, d = z.shape
    e = np.vstack([z.T, np.ones((1, n))])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = nnls(e, f, maxiter=100 * (n + d))
    r = e @ u - f
    # r[d] = 1ᵀu − 1 < 0 for a feasible problem; ‖r‖ = 0 certifies infeasibility (no separator).
    if not r[d] < -1e-12:
        raise ValueError("data is not linearly separable through the origin (least-distance program infeasible)")
    w = -r[:d] / r[d]
    alpha = u / (-r[d])
    if np.min(z @ w) < 1 - 1e-6:
        raise ValueError(f"NNLS returned an infeasible point (min margin {np.min(z @ w):.3g} < 1)")
    norm = float(np.linalg.norm(w))
    return MaxMarginSolution(direction=w / norm, weights=w, margin=1.0 / norm, dual=alpha, spread=0.0)


def linf_max_margin(x, y, check_unique: bool = True, rel_tol: float = 1e-9) -> MaxMarginSolution:
    """The ℓ∞ max-margin direction ``argmax_{‖w‖∞ ≤ 1} min_i s_i x_iᵀw`` by linear programming
    (HiGHS). With ``check_unique``, ``spread`` is :func:`linf_optimal_set_spread` at ``rel_tol``.

    Raises:
      ValueError: if the LP fails or the data is not linearly separable through the origin.
    """
    from scipy.optimize import linprog

    z = signed_inputs(x, y)
    n, d = z.shape
    c = np.zeros(d + 1)
    c[-1] = -1.0
    a_ub = np.hstack([-z, np.ones((n, 1))])  # γ − z_iᵀw ≤ 0
    bounds = [(-1.0, 1.0)] * d + [(None, None)]
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(n), bounds=bounds, method="highs")
    if res.status != 0:
        raise ValueError(f"ℓ∞ max-margin LP failed: {res.message}")
    w, gamma = res.x[:d], float(res.x[-1])
    if gamma <= 0:
        raise ValueError("data is not linearly separable through the origin (ℓ∞ max margin <= 0)")
    dual = np.asarray(res.ineqlin.marginals, np.float64) * -1.0
    spread = linf_optimal_set_spread(x, y, gamma, rel_tol) if check_unique else float("nan")
    return MaxMarginSolution(direction=w / np.linalg.norm(w), weights=w, margin=gamma, dual=dual, spread=spread)


def linf_optimal_set_spread(x, y, margin: float, rel_tol: float) -> float:
    """``max_j (max w_j − min w_j)`` over ``{‖w‖∞ ≤ 1, s_i x_iᵀw ≥ (1 − rel_tol)·margin}`` by ``2d``
    LPs. For a unique ℓ∞ maximizer this shrinks in proportion to ``rel_tol`` (the constant is the
    LP's conditioning); a spread that does not shrink with ``rel_tol`` means the optimal face is
    not a point, and "the" ℓ∞ direction is not defined."""
    from scipy.optimize import linprog

    z = signed_inputs(x, y)
    n, d = z.shape
    floor = (1.0 - rel_tol) * margin
    ranges = np.zeros(d)
    for j in range(d):
        ends = []
        for sign in (1.0, -1.0):  # min w_j, then −max w_j
            cj = np.zeros(d)
            cj[j] = sign
            r = linprog(cj, A_ub=-z, b_ub=-floor * np.ones(n), bounds=[(-1.0, 1.0)] * d, method="highs")
            if r.status != 0:
                raise ValueError(f"ℓ∞ optimal-set LP failed: {r.message}")
            ends.append(sign * r.fun)
        ranges[j] = ends[1] - ends[0]
    return float(np.max(ranges))


def normalized_margin(w, x, y, ord=2) -> np.ndarray:
    """``min_i s_i x_iᵀw / ‖w‖_ord`` for a weight vector ``w`` (``(d,)``) or a stack ``(..., d)``;
    equals :func:`l2_max_margin`'s (``ord=2``) or :func:`linf_max_margin`'s (``ord=np.inf``)
    ``margin`` exactly at the corresponding max-margin direction."""
    z = signed_inputs(x, y)
    w = np.asarray(w, np.float64)
    return np.min(w @ z.T, axis=-1) / np.linalg.norm(w, ord=ord, axis=-1)
