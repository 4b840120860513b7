"""Implicit gradient regularization (Barrett & Dherin 2021, ICLR): backward error analysis of GD.

Gradient descent ``θ_{k+1} = θ_k − η∇L(θ_k)`` is a first-order (explicit Euler) discretization of
the gradient flow ``θ' = −∇L(θ)``, so after ``n`` steps, at time ``T = nη``, it is ``O(η)`` away
from the flow. Backward error analysis finds the flow that GD follows to higher order: the
*modified flow*

    θ' = −∇L̃(θ),        L̃(θ) = L(θ) + (η/4) ‖∇L(θ)‖²,     ∇L̃ = ∇L + (η/2) ∇²L ∇L,

stays ``O(η²)`` from the GD iterates over a fixed time ``T`` (Barrett & Dherin 2021, Thm. 3.1;
Hairer, Lubich & Wanner, *Geometric Numerical Integration*, ch. IX). The extra term is an implicit
regularizer that penalizes large gradients, i.e. pushes GD towards flatter regions.

This module measures both orders on any ``loss_fn(θ) -> scalar`` over a flat parameter vector:
GD for a ladder of step sizes ``η_k = η_max / 2^k`` (all sharing ``T``, one vmapped program with
each run masked after its own ``T/η_k`` steps), and both flows integrated by classical RK4 with a
step ``h`` much smaller than every ``η`` (the flows of L̃ for every ``η`` and of ``L`` — the
``η = 0`` member of the same family — in one vmapped program). The integration error is estimated
by repeating the integration with ``h/2`` (RK4's error is ``O(h⁴)``, so the difference of the two
is the error of the coarse one to within 1/16). The log–log slopes of distance vs ``η`` are the
two headline numbers (paper: 1 for the gradient flow, 2 for the modified flow).

``run(config, run_dir)`` does this for a small tanh MLP with the MSE loss on a few ``teacher``
regression examples, in float64 (``jax.enable_x64`` inside the study).
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import results


class BackwardErrorResult(NamedTuple):
    """Distances between GD and the two flows over a ladder of step sizes.

    Attributes:
      etas: ``[K]`` step sizes (descending, factor-2 ladder).
      times: ``[R]`` record times ``j·η_max``, ``j = 1..R`` (the last is ``T``).
      dist_gradient_flow, dist_modified_flow: ``[K, R]`` Euclidean distances between the GD
        iterate of step ``η_k`` at time ``t_j`` and the gradient flow / the modified flow of
        ``η_k`` at ``t_j``.
      gd_loss, flow_loss, modified_flow_loss: ``[K, R]``, ``[R]``, ``[K, R]`` loss along each path.
      rk4_error: estimated integration error (max over flows and record times of the distance
        between the step-``h`` and step-``h/2`` integrations).
      slope_gradient_flow, slope_modified_flow: least-squares slopes of ``log dist(T)`` vs
        ``log η`` over the ladder.
    """

    etas: np.ndarray
    times: np.ndarray
    dist_gradient_flow: np.ndarray
    dist_modified_flow: np.ndarray
    gd_loss: np.ndarray
    flow_loss: np.ndarray
    modified_flow_loss: np.ndarray
    rk4_error: float
    slope_gradient_flow: float
    slope_modified_flow: float


def modified_loss(loss_fn: Callable, eta) -> Callable:
    """``L̃(θ) = L(θ) + (η/4)‖∇L(θ)‖²``, the loss whose gradient flow GD with step ``η`` follows to
    second order (Barrett & Dherin 2021, eq. 2). ``eta`` may be traced (vmapped over)."""
    grad = jax.grad(loss_fn)

    def loss(theta):
        g = grad(theta)
        return loss_fn(theta) + 0.25 * eta * jnp.vdot(g, g)

    return loss


def gd_ladder(loss_fn: Callable, theta0, eta_max: float, num_etas: int, num_records: int):
    """GD from ``theta0`` for ``η_k = η_max/2^k``, ``k < num_etas``, recorded at times
    ``j·η_max`` (``j = 1..num_records``), i.e. after ``j·2^k`` steps of run ``k``.

    One program vmapped over ``k``: every run executes ``2^(K−1)`` inner iterations per record and
    applies only the first ``2^k`` of them (a masked update), so all runs share one scan.
    Returns the iterates ``[K, R, d]`` (the step sizes are :func:`ladder`).
    """
    inner = 2 ** (num_etas - 1)
    ks = jnp.arange(num_etas)
    grad = jax.grad(loss_fn)

    def one_run(k):
        eta = eta_max / 2.0 ** k
        active_steps = 2**k

        def record(theta, _):
            def step(th, i):
                return jnp.where(i < active_steps, th - eta * grad(th), th), None

            theta, _ = jax.lax.scan(step, theta, jnp.arange(inner))
            return theta, theta

        return jax.lax.scan(record, theta0, None, length=num_records)[1]

    return jax.vmap(one_run)(ks)


def ladder(eta_max: float, num_etas: int) -> np.ndarray:
    """The factor-2 ladder ``η_k = η_max / 2^k``, ``k < num_etas`` (float64 numpy)."""
    return float(eta_max) / 2.0 ** np.arange(num_etas)


def rk4_flows(loss_fn: Callable, theta0, coeffs, steps, active, max_substeps: int, num_records: int):
    """Classical RK4 integration of ``θ' = −∇L_c(θ)``, ``L_c = L + c‖∇L‖²``, vmapped over flows
    ``i``: coefficient ``coeffs[i]`` (``c = 0`` is the gradient flow, ``c = η/4`` the modified flow
    of GD with step ``η``), step ``steps[i]``, and ``active[i] ≤ max_substeps`` RK4 steps per
    record (the rest of the ``max_substeps`` iterations are masked), so flows integrated at
    different resolutions share one compiled program. Returns ``[C, R, d]``."""

    def one_flow(c, h, n_active):
        field = lambda th: -jax.grad(modified_loss(loss_fn, 4.0 * c))(th)  # noqa: E731

        def rk4(th, i):
            k1 = field(th)
            k2 = field(th + 0.5 * h * k1)
            k3 = field(th + 0.5 * h * k2)
            k4 = field(th + h * k3)
            return jnp.where(i < n_active, th + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4), th), None

        def record(th, _):
            th, _ = jax.lax.scan(rk4, th, jnp.arange(max_substeps))
            return th, th

        return jax.lax.scan(record, theta0, None, length=num_records)[1]

    return jax.vmap(one_flow)(jnp.asarray(coeffs), jnp.asarray(steps), jnp.asarray(active))


def fit_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the order of convergence)."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def backward_error(loss_fn: Callable, theta0, eta_max: float, num_etas: int, num_records: int,
                   rk4_substeps_per_min_eta: int = 8) -> BackwardErrorResult:
    """GD vs gradient flow vs modified flow over ``T = num_records · η_max`` for the factor-2
    ladder ``η_k = η_max/2^k`` (module docstring). The RK4 step is
    ``h = η_min / rk4_substeps_per_min_eta``; its error is estimated with a second pass at ``h/2``.

    Works in the dtype of ``theta0`` (use float64 for slopes over several decades of distance).
    """
    theta0 = jnp.asarray(theta0)
    etas = ladder(eta_max, num_etas)
    gd = jax.jit(gd_ladder, static_argnums=(0, 2, 3, 4))(loss_fn, theta0, eta_max, num_etas, num_records)
    coeffs = np.concatenate([[0.0], etas / 4.0])
    eta_min = float(etas[-1])
    per_record = int(round(eta_max / eta_min)) * rk4_substeps_per_min_eta
    h = eta_min / rk4_substeps_per_min_eta
    # Every flow twice, at steps h and h/2, in one vmapped program (the coarse pass masked).
    n = len(coeffs)
    both = jax.jit(rk4_flows, static_argnums=(0, 5, 6))(
        loss_fn, theta0, np.tile(coeffs, 2), np.repeat([h, h / 2], n), np.repeat([per_record, 2 * per_record], n),
        2 * per_record, num_records)
    both, gd = np.asarray(both, np.float64), np.asarray(gd, np.float64)
    fine, finer = both[:n], both[n:]
    rk4_error = float(np.max(np.linalg.norm(fine - finer, axis=-1)))
    gf, mf = finer[0], finer[1:]
    d_gf = np.linalg.norm(gd - gf[None], axis=-1)
    d_mf = np.linalg.norm(gd - mf, axis=-1)
    k = len(etas)
    losses = np.asarray(jax.jit(jax.vmap(jax.vmap(loss_fn)))(jnp.asarray(np.concatenate([gd, finer]))))
    return BackwardErrorResult(
        etas=etas, times=eta_max * np.arange(1, num_records + 1), dist_gradient_flow=d_gf, dist_modified_flow=d_mf,
        gd_loss=losses[:k], flow_loss=losses[k], modified_flow_loss=losses[k + 1:], rk4_error=rk4_error,
        slope_gradient_flow=fit_slope(etas, d_gf[:, -1]), slope_modified_flow=fit_slope(etas, d_mf[:, -1]))


def network_problem(config):
    """``(loss_fn on flat float64 parameters, θ0, data, info)`` for the study's network: an MLP
    from ``dl_course.models`` (``config.model_options``) with the mean-over-examples ``config.loss``
    on the training set of ``config.dataset``; parameters initialised from ``config.seed`` and cast
    to float64 (flax promotes the computation to float64 when inputs and parameters are)."""
    from jax.flatten_util import ravel_pytree

    from dl_course.train import supervised_task
    from dl_course.train.build import load_data, make_model

    data = load_data(config)
    model = make_model(config, data)
    task = supervised_task(model, config.loss, data.num_classes)
    x = jnp.asarray(data.x_train, jnp.float64)
    y = jnp.asarray(data.y_train, jnp.float64 if data.num_classes == 0 else jnp.int32)
    params, model_state = jax.jit(task.init)(jax.random.PRNGKey(int(config.seed)), x[:1])
    params = jax.tree.map(lambda p: np.asarray(p, np.float64), params)
    flat0, unravel = ravel_pytree(params)
    batch = {"x": x, "y": y}
    key = jax.random.PRNGKey(0)

    def loss_fn(theta):
        return task.loss(unravel(theta), model_state, batch, key, False)[0]

    return loss_fn, flat0, data, {"num_params": int(flat0.size), "n_train": int(data.n_train)}


def run(config, run_dir: results.RunDir) -> dict:
    """Backward-error study on the config's network (module docstring): distances at ``T`` for the
    η ladder, their fitted slopes, the distance-vs-time curves, the loss along every path."""
    from dl_course.plotting import dynamics

    t0 = time.perf_counter()
    with jax.enable_x64(True):
        loss_fn, theta0, data, info = network_problem(config)
        res = backward_error(loss_fn, theta0, float(config.eta_max), int(config.num_etas), int(config.num_records),
                             int(config.rk4_substeps))
    seconds = time.perf_counter() - t0
    T = float(res.times[-1])
    print(f"T = {T:g}; RK4 error estimate {res.rk4_error:.2e}")
    print(f"{'eta':>10} {'steps':>6} {'|GD - GF|':>12} {'|GD - MF|':>12}")
    for k, eta in enumerate(res.etas):
        print(f"{eta:>10.5g} {int(round(T / eta)):>6d} {res.dist_gradient_flow[k, -1]:>12.4e} {res.dist_modified_flow[k, -1]:>12.4e}")
    print(f"slopes: gradient flow {res.slope_gradient_flow:.3f} (paper 1), modified flow {res.slope_modified_flow:.3f} (paper 2)")

    run_dir.figure("backward_error.png", dynamics.igr_figure(res, title=(
        f"GD vs flows at T={T:g}: {config.model} ({info['num_params']} params) on {info['n_train']} {config.dataset} examples")))
    headline = {
        "slope_gradient_flow": res.slope_gradient_flow, "slope_modified_flow": res.slope_modified_flow,
        "paper_slope_gradient_flow": 1.0, "paper_slope_modified_flow": 2.0, "time_T": T,
        "learning_rates": res.etas.tolist(),
        "distance_gradient_flow": res.dist_gradient_flow[:, -1].tolist(),
        "distance_modified_flow": res.dist_modified_flow[:, -1].tolist(),
        "rk4_error_estimate": res.rk4_error,
        "min_distance_over_rk4_error": float(np.min(res.dist_modified_flow[:, -1]) / max(res.rk4_error, 1e-300)),
        "seconds": seconds,
    }
    runs = [{"seed": int(config.seed), "learning_rate": float(eta), "diverged": bool(not np.isfinite(res.gd_loss[k]).all()),
             "steps": int(round(T / eta)), "distance_gradient_flow": float(res.dist_gradient_flow[k, -1]),
             "distance_modified_flow": float(res.dist_modified_flow[k, -1]),
             "final_train_loss": float(res.gd_loss[k, -1])} for k, eta in enumerate(res.etas)]
    conventions = {
        "loss": config.loss, "loss_reduction": "mean over examples", "dtype": "float64 (jax.enable_x64 inside the study)",
        "dataset": data.name, "data_info": data.info, "model": config.model, "model_options": config.model_options.to_dict(),
        "num_params": info["num_params"], "batching": "full-batch gradient descent",
        "initialisation": f"flax init from PRNGKey({int(config.seed)}), cast to float64",
        "modified_loss": "L + (eta/4) ||grad L||^2 (Barrett & Dherin 2021)",
        "integrator": f"classical RK4, step eta_min/{int(config.rk4_substeps)}; error estimated against step eta_min/"
                      f"{2 * int(config.rk4_substeps)} (the finer solution is the reference)",
        "distance": "Euclidean norm of the flat parameter difference at time T = n * eta",
        "slope_fit": "least squares of log distance vs log eta over the whole ladder",
        "devices": f"{jax.devices()[0].device_kind} ({jax.default_backend()})",
    }
    results.write_results(run_dir, config, "implicit_gradient_regularization", conventions, runs, headline, {
        "learning_rate": res.etas, "times": res.times, "dist_gradient_flow": res.dist_gradient_flow,
        "dist_modified_flow": res.dist_modified_flow, "gd_loss": res.gd_loss, "flow_loss": res.flow_loss,
        "modified_flow_loss": res.modified_flow_loss})
    return headline
