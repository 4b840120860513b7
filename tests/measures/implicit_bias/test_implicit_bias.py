"""Max-margin solvers and trajectory measures of implicit bias (``dl_course.measures``) against
brute force, KKT certificates and hand-computed directions.

These are host-side float64 numpy/scipy computations (no float64 switch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from dl_course.measures.implicit_bias import directions as implicit_bias
from dl_course.measures.implicit_bias import max_margin_solvers as mm


def _brute_force_direction(z, ord, num=200_001):
    """argmax over unit-circle directions of min_i z_i·u / ||u||_ord (2D), and the max value."""
    angles = np.linspace(-np.pi, np.pi, num)
    u = np.stack([np.cos(angles), np.sin(angles)], -1)
    values = np.min(u @ z.T, axis=1) / np.linalg.norm(u, ord=ord, axis=1)
    j = np.argmax(values)
    return u[j], values[j]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_margin_solvers_match_brute_force_in_2d(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(12, 2)) + np.array([2.0, 1.0])
    y = np.ones(12, int)
    flip = rng.random(12) < 0.5
    x[flip] *= -1
    y[flip] = 0
    z = mm.signed_inputs(x, y)
    for solver, ord in ((mm.l2_max_margin, 2), (mm.linf_max_margin, np.inf)):
        sol = solver(x, y)
        u, best = _brute_force_direction(z, ord)
        # A 2e5-point angle grid resolves the direction to ~3e-5 rad and the value to O(3e-5).
        assert sol.margin == pytest.approx(best, rel=1e-4)
        assert float(sol.direction @ u) > 1 - 1e-6
        assert mm.normalized_margin(sol.weights, x, y, ord) == pytest.approx(sol.margin, rel=1e-9)


def test_l2_solver_satisfies_the_kkt_conditions_in_high_dimension():
    """w = Zᵀα, α ≥ 0, margins ≥ 1 with equality wherever α > 0: a certificate of optimality."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(15, 40))
    y = (rng.random(15) < 0.5).astype(int)
    sol = mm.l2_max_margin(x, y)
    z = mm.signed_inputs(x, y)
    margins = z @ sol.weights
    assert np.all(sol.dual >= 0)
    np.testing.assert_allclose(z.T @ sol.dual, sol.weights, atol=1e-9)
    assert margins.min() >= 1 - 1e-9
    np.testing.assert_allclose(sol.dual * (margins - 1), 0, atol=1e-9)
    assert sol.margin == pytest.approx(1 / np.linalg.norm(sol.weights))


def test_linf_uniqueness_check_tells_a_vertex_from_a_face():
    # One point on the e1 axis: every w = (1, w2), |w2| ≤ 1, has ℓ∞-margin 1, so the optimal set is
    # a segment of length 2 whatever the tolerance; two generic points give a unique vertex.
    face = mm.linf_max_margin(np.array([[1.0, 0.0]]), np.array([1]))
    assert face.margin == pytest.approx(1.0) and face.spread == pytest.approx(2.0, abs=1e-6)
    x, y = np.array([[3.0, -0.2], [-1.0, -0.3]]), np.array([1, 0])
    vertex = mm.linf_max_margin(x, y, rel_tol=1e-9)
    assert vertex.spread < 1e-6
    assert mm.linf_optimal_set_spread(x, y, vertex.margin, rel_tol=1e-3) > 100 * vertex.spread


def test_solvers_reject_non_separable_data():
    x = np.array([[1.0, 0.0], [2.0, 0.0]])
    y = np.array([1, 0])
    with pytest.raises(ValueError, match="not linearly separable"):
        mm.l2_max_margin(x, y)
    with pytest.raises(ValueError, match="not linearly separable"):
        mm.linf_max_margin(x, y, check_unique=False)


def test_max_margin_directions_of_two_points_are_the_hand_solved_ones():
    # Signed points z1 = (3, −0.2) and z2 = (1, 0.3). ℓ2: only z2 is a support vector, w* ∝ (1, 0.3);
    # ℓ∞: max min(3w1 − 0.2w2, w1 + 0.3w2) over the box is 1.3, at (1, 1) only (a unique vertex).
    x, y = np.array([[3.0, -0.2], [-1.0, -0.3]]), np.array([1, 0])
    sols = implicit_bias.max_margin_directions(x, y)
    l2, linf = np.array([1.0, 0.3]) / np.sqrt(1.09), np.ones(2) / np.sqrt(2)
    np.testing.assert_allclose(sols["l2"].direction, l2, atol=1e-9)
    np.testing.assert_allclose(sols["linf"].direction, linf, atol=1e-7)
    assert sols["linf_unique"] and sols["cos_l2_linf"] == pytest.approx(l2 @ linf, abs=1e-7)
    # A one-point set has a whole segment of ℓ∞ maximizers (w = (1, w2), |w2| <= 1): not unique.
    assert not implicit_bias.max_margin_directions(np.array([[1.0, 0.0]]), np.array([1]))["linf_unique"]

    w = np.array([[0.0, 0.0], [2.0, 0.6], [1.0, 1.0], [1.0, -1.0]])
    m = implicit_bias.direction_measures(w, x, y, sols)
    assert np.isnan(m["cos_l2"][0]) and m["norm"][1] == pytest.approx(2 * np.sqrt(1.09))
    assert m["cos_l2"][1] == pytest.approx(1.0) and m["margin_ratio_l2"][1] == pytest.approx(1.0)
    assert m["cos_linf"][2] == pytest.approx(1.0) and m["margin_ratio_linf"][2] == pytest.approx(1.0)
    # w = (1, −1): margins min(3.2, 0.7) = 0.7, over ‖w‖₂ = √2 and over γ*₂ = z2·w*₂ = √1.09.
    assert m["margin_l2"][3] == pytest.approx(0.7 / np.sqrt(2))
    assert m["margin_ratio_l2"][3] == pytest.approx(0.7 / np.sqrt(2) / np.sqrt(1.09))


def test_norm_growth_rate_and_step_helpers():
    steps = np.unique(np.round(np.logspace(0, 5, 60)).astype(int))
    gamma = 0.4
    norm = np.log(steps) / gamma + 3.0  # ‖w(t)‖ = log t / γ + const: the rate is exactly 1
    assert implicit_bias.norm_growth_rate(steps, norm, gamma) == pytest.approx(1.0, rel=1e-9)
    traj = np.full((5, 2), 2.0)
    traj[:3] = np.arange(3)[:, None]  # moves until the third record (step 4), then frozen
    assert implicit_bias.last_change_step(np.array([1, 2, 4, 8, 16]), traj) == 4
    values = np.array([0.5, 0.99, 0.9, 0.995, 0.999])
    assert implicit_bias.first_step_above(np.arange(5), values, 0.99) == 3
    assert implicit_bias.first_step_above(np.arange(5), values, 0.9999) is None
    assert implicit_bias.first_step_above(np.arange(5), values, 0.1) == 0
