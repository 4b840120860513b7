"""Module 2 training-dynamics studies: tiny smoke runs through the launchers' code path
(``dl_course.cli.run_study``), and cheap checks of each paper's claim where a closed form exists:

* edge of stability: on a quadratic (a linear model with the MSE loss) GD's iterates match the
  closed form and the tracked λmax is the exact top Hessian eigenvalue;
* max margin: both solvers against brute force and KKT certificates; on a 2-point dataset GD's
  direction approaches the known ℓ2 max-margin direction and sign descent the ℓ∞ one;
* implicit gradient regularization: on a quadratic-plus-quartic loss the distance between GD and
  the modified flow shrinks like η², between GD and the gradient flow like η.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dl_course import cli
from dl_course.data.dataset import make_dataset
from dl_course.measures import max_margin_solvers as mm
from dl_course.results import RunDir
from dl_course.studies import edge_of_stability, igr, max_margin
from dl_course.train.build import load_data


def _summary(path):
    return json.loads((path / "summary.json").read_text())


# ---------------------------------------------------------------- edge of stability


def test_edge_of_stability_on_a_quadratic_gd_is_closed_form_and_lambda_max_exact(tmp_path):
    """The launcher's config and code path (simulate, then report) with a linear model, so the MSE
    loss is the quadratic L(θ) = 1/(2n) Σ ||Wᵀx_i + b − e_{y_i}||², whose Hessian is I_10 ⊗ Σ̃ with
    Σ̃ = (1/n) Σ x̃x̃ᵀ, x̃ = (x, 1). From θ0 = 0, θ_k = θ* − (I − ηΣ̃)^k θ* per output column."""
    config = cli.load_study("edge_of_stability").get_config()
    config.dataset_options.num_train = 100
    config.model = "linear"
    config.model_options = ml_collections.ConfigDict({"use_bias": True, "init_scale": 0.0})
    config.steps, config.eval_every, config.lanczos_iters = 30, 15, 20
    config.learning_rates = [0.05, 0.2]
    res = edge_of_stability.simulate(config)
    run_dir = RunDir(tmp_path / "x")
    edge_of_stability.report(config, res, run_dir)
    out = run_dir.commit()

    data = load_data(config)
    x = np.hstack([data.x_train.astype(np.float64), np.ones((data.n_train, 1))])
    sigma = x.T @ x / data.n_train
    evals, q = np.linalg.eigh(sigma)
    theta_star = np.linalg.solve(sigma, x.T @ np.eye(10)[data.y_train] / data.n_train)  # (41, 10)
    for i, lr in enumerate(config.learning_rates):
        expected = theta_star - q @ np.diag((1 - lr * evals) ** config.steps) @ q.T @ theta_star
        p = res.params["Dense_0"]
        got = np.vstack([p["kernel"][i], p["bias"][i][None]])
        # float32 GD over 30 steps: rounding errors ~1e-6 relative per step, amplified at most by
        # |1 − ηλ| ≤ 1 (stable rates), so 1e-4 of the scale of θ is a wide margin.
        np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())
        # Lanczos (20 iterations, float32) on a constant Hessian: relative error at float32 rounding.
        np.testing.assert_allclose(res.metrics["lambda_max"][i], evals[-1], rtol=2e-4)

    s = _summary(out)
    assert len(s["runs"]) == 2
    for row in s["runs"]:
        for key in ("learning_rate", "threshold", "sharpness_final_over_threshold", "max_sharpness",
                    "final_train_loss", "seed", "diverged"):
            assert key in row, key
        assert row["threshold"] == pytest.approx(2 / row["learning_rate"], rel=1e-6)
        assert row["sharpness_final_over_threshold"] == pytest.approx(evals[-1] * row["learning_rate"] / 2, rel=2e-4)
    assert {"sharpness_and_loss.png", "sharpness_over_threshold.png", "metrics.npz"} <= {p.name for p in out.iterdir()}
    m = np.load(out / "metrics.npz")
    assert m["lambda_max"].shape == (2, 3) and m["train_loss"].shape == (2, 3)


def test_edge_of_stability_rejects_minibatches_and_other_optimizers():
    config = cli.load_study("edge_of_stability").get_config()
    config.batch_size = 32
    with pytest.raises(ValueError, match="full-batch"):
        edge_of_stability.simulate(config)
    config.batch_size, config.optimizer = 0, "momentum"
    with pytest.raises(ValueError, match="supports optimizer"):
        edge_of_stability.simulate(config)


# ---------------------------------------------------------------- max margin


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


def _two_points():
    # Signed points z1 = (3, −0.2) and z2 = (1, 0.3). ℓ2: only z2 is a support vector, w* ∝ (1, 0.3)
    # (z1·w*/(z2·w*) = 2.74/1.3 > 1). ℓ∞: max min(3w1 − 0.2w2, w1 + 0.3w2) over the box is 1.3, at
    # (1, 1) only. cos between them: 1.3/(√2·√1.09) = 0.88.
    x = np.array([[3.0, -0.2], [-1.0, -0.3]], np.float32)
    y = np.array([1, 0])
    return make_dataset(x, y, x, y, 2, "two_points", {}), np.array([1.0, 0.3]) / np.sqrt(1.09), np.ones(2) / np.sqrt(2)


def test_max_margin_on_two_points_gd_to_l2_and_sign_descent_to_linf():
    data, l2_dir, linf_dir = _two_points()
    sols = max_margin.solve_directions(data)
    np.testing.assert_allclose(sols["l2"].direction, l2_dir, atol=1e-9)
    np.testing.assert_allclose(sols["linf"].direction, linf_dir, atol=1e-7)
    config = cli.load_study("max_margin").get_config()
    config.steps, config.eval_every, config.num_records = 20_000, 10_000, 30
    config.optimizers = {"gd": {"optimizer": "sgd", "learning_rates": [1.0]},
                         "sign_descent": {"optimizer": "sign_descent", "learning_rates": [0.01]}}
    sim = max_margin.simulate(config, data=data)["data"]
    gd, sign = sim["runs"]
    gap = 1 - gd["measures"]["cos_l2"]
    # Soudry et al.: the angle gap closes like 1/log t. With one support vector the transient from
    # z1 fades quickly; after 2e4 steps 1 − cos is ~1e-5, monotonically decreasing.
    assert gap[-1] < 1e-3 and np.all(np.diff(gap[len(gap) // 3:]) <= 1e-9)
    assert 1 - sign["measures"]["cos_linf"][-1] < 1e-4  # w(t) = η t (1, 1) up to the first steps


def test_max_margin_smoke_writes_required_keys_and_data(tmp_path):
    out = cli.run_study("max_margin", [
        "--config.datasets={'tiny': {'n_train': 10, 'n_test': 10, 'dim': 12, 'seed': 0}}",
        "--config.optimizers={'adam': {'optimizer': 'adam', 'learning_rates': [0.001, 0.01]}}",
        "--config.steps=200", "--config.eval_every=100", "--config.num_records=20"], workdir=str(tmp_path / "x"))
    s = _summary(out)
    assert len(s["runs"]) == 2
    for row in s["runs"]:
        for key in ("optimizer", "learning_rate", "cos_to_l2_max_margin", "cos_to_linf_max_margin",
                    "normalized_margin", "final_direction", "seed", "diverged"):
            assert key in row, key
        assert len(row["final_direction"]) == 12
        assert np.linalg.norm(row["final_direction"]) == pytest.approx(1.0, rel=1e-6)
    m = np.load(out / "metrics.npz")
    assert m["x"].shape == (10, 12) and m["y"].shape == (10,)
    # anyone can recompute the directions from the saved data
    np.testing.assert_allclose(mm.l2_max_margin(m["x"], m["y"]).direction, m["l2_max_margin_direction_tiny"])
    assert (out / "max_margin.png").exists()


# ---------------------------------------------------------------- implicit gradient regularization


def test_igr_slopes_on_quadratic_plus_quartic():
    """L(θ) = ½ θᵀAθ + ¼ Σ θ_j⁴: GD − modified flow = O(η²), GD − gradient flow = O(η)."""
    def loss(theta):
        a = jnp.array([[1.0, 0.3], [0.3, 2.0]], theta.dtype)
        return 0.5 * theta @ a @ theta + 0.25 * jnp.sum(theta**4)

    with jax.enable_x64(True):
        res = igr.backward_error(loss, jnp.array([1.0, -0.8], jnp.float64), eta_max=0.1, num_etas=4,
                                 num_records=10, rk4_substeps_per_min_eta=4)
    # The leading terms dominate for η ≤ 0.1 (ηλmax ≤ 0.4): pairwise slopes are within a few % of
    # the orders; the RK4 error (h = η_min/4 ≈ 3e-3, O(h⁴)) is far below the smallest distance.
    assert res.slope_gradient_flow == pytest.approx(1.0, abs=0.1)
    assert res.slope_modified_flow == pytest.approx(2.0, abs=0.1)
    assert res.rk4_error < 1e-3 * res.dist_modified_flow[:, -1].min()


def test_igr_smoke_writes_slopes_and_distances(tmp_path):
    out = cli.run_study("implicit_gradient_regularization", [
        "--config.model_options.width=4", "--config.dataset_options.n_train=8", "--config.num_etas=3",
        "--config.num_records=4", "--config.rk4_substeps=2"], workdir=str(tmp_path / "x"))
    s = _summary(out)
    h = s["headline"]
    for key in ("slope_gradient_flow", "slope_modified_flow", "distance_gradient_flow", "distance_modified_flow",
                "learning_rates"):
        assert key in h, key
    assert len(h["distance_modified_flow"]) == 3 and len(s["runs"]) == 3
    assert all(d2 < d1 for d1, d2 in zip(h["distance_gradient_flow"], h["distance_modified_flow"]))
    assert s["conventions"]["dtype"].startswith("float64")
    assert (out / "backward_error.png").exists()
