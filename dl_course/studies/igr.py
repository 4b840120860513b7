"""Implicit gradient regularization (Barrett & Dherin 2021, ICLR): backward error analysis of GD.

The measurement — GD over a factor-2 ladder of step sizes against the gradient flow of ``L`` and
the modified flows of ``L + (η/4)‖∇L‖²``, integrated by diffrax — is
``dl_course.measures.backward_error`` (module ``measures.implicit_bias.modified_flow``; see its docstring for the
math). This study applies it to
a small tanh MLP with the MSE loss on a few ``teacher`` regression examples, in float64
(``jax.enable_x64`` inside the study): the network and data come from the engine config
``config.train`` (its first seed initializes the parameters), the ladder and the integration
tolerances are study keys (``eta_max``, ``num_etas``, ``num_records``, ``flow_rtol``,
``flow_atol``). The log–log slopes of distance vs ``η`` are the headline (paper: 1 for the
gradient flow, 2 for the modified flow).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import results
from dl_course.measures import backward_error


def _seed(train) -> int:
    return int(list(train.seeds)[0])


def network_problem(train):
    """``(loss_fn on flat float64 parameters, θ0, data, info)`` for the engine config ``train``:
    its model (``train.model``, ``train.model_options``) with the mean-over-examples
    ``train.loss`` on the training set of ``train.dataset``; parameters initialised from
    ``train.seeds[0]`` and cast to float64 (flax promotes the computation to float64 when inputs
    and parameters are)."""
    from jax.flatten_util import ravel_pytree

    from dl_course.train import supervised_task
    from dl_course.train.build import load_data, make_model

    data = load_data(train)
    task = supervised_task(make_model(train, data), train.loss, data.num_classes)
    x = jnp.asarray(data.x_train, jnp.float64)
    y = jnp.asarray(data.y_train, jnp.float64 if data.num_classes == 0 else jnp.int32)
    params, model_state = jax.jit(task.init)(jax.random.PRNGKey(_seed(train)), x[:1])
    params = jax.tree.map(lambda p: np.asarray(p, np.float64), params)
    flat0, unravel = ravel_pytree(params)
    batch = {"x": x, "y": y}
    key = jax.random.PRNGKey(0)

    def loss_fn(theta):
        return task.loss(unravel(theta), model_state, batch, key, False)[0]

    return loss_fn, flat0, data, {"num_params": int(flat0.size), "n_train": int(data.n_train)}


def run(config, run_dir: results.RunDir) -> dict:
    """Backward-error study on the network of ``config.train`` (module docstring): distances at ``T`` for the
    η ladder, their fitted slopes, the distance-vs-time curves, the loss along every path."""
    from dl_course.plotting import backward_error as plots

    t = config.train
    t0 = time.perf_counter()
    with jax.enable_x64(True):
        loss_fn, theta0, data, info = network_problem(t)
        res = backward_error(loss_fn, theta0, float(config.eta_max), int(config.num_etas), int(config.num_records),
                             rtol=float(config.flow_rtol), atol=float(config.flow_atol))
    seconds = time.perf_counter() - t0
    T = float(res.times[-1])
    print(f"T = {T:g}; integration error estimate {res.integration_error:.2e}")
    print(f"{'eta':>10} {'steps':>6} {'|GD - GF|':>12} {'|GD - MF|':>12}")
    for k, eta in enumerate(res.etas):
        print(f"{eta:>10.5g} {int(round(T / eta)):>6d} {res.dist_gradient_flow[k, -1]:>12.4e} "
              f"{res.dist_modified_flow[k, -1]:>12.4e}")
    print(f"slopes: gradient flow {res.slope_gradient_flow:.3f} (paper 1), "
          f"modified flow {res.slope_modified_flow:.3f} (paper 2)")

    run_dir.figure("backward_error.png", plots.backward_error_figure(res, title=(
        f"GD vs flows at T={T:g}: {t.model} ({info['num_params']} params) on {info['n_train']} {t.dataset} examples")))
    headline = {
        "slope_gradient_flow": res.slope_gradient_flow, "slope_modified_flow": res.slope_modified_flow,
        "paper_slope_gradient_flow": 1.0, "paper_slope_modified_flow": 2.0, "time_T": T,
        "learning_rates": res.etas.tolist(),
        "distance_gradient_flow": res.dist_gradient_flow[:, -1].tolist(),
        "distance_modified_flow": res.dist_modified_flow[:, -1].tolist(),
        "integration_error_estimate": res.integration_error,
        "min_distance_over_integration_error": float(np.min(res.dist_modified_flow[:, -1])
                                                     / max(res.integration_error, 1e-300)),
        "seconds": seconds,
    }
    runs = [{"seed": _seed(t), "learning_rate": float(eta), "diverged": bool(not np.isfinite(res.gd_loss[k]).all()),
             "steps": int(round(T / eta)), "distance_gradient_flow": float(res.dist_gradient_flow[k, -1]),
             "distance_modified_flow": float(res.dist_modified_flow[k, -1]),
             "final_train_loss": float(res.gd_loss[k, -1])} for k, eta in enumerate(res.etas)]
    conventions = {
        "loss": t.loss, "loss_reduction": "mean over examples", "dtype": "float64 (jax.enable_x64 inside the study)",
        "dataset": data.name, "data_info": data.info, "model": t.model, "model_options": t.model_options.to_dict(),
        "num_params": info["num_params"], "batching": "full-batch gradient descent",
        "initialisation": f"flax init from PRNGKey({_seed(t)}), cast to float64",
        "modified_loss": "L + (eta/4) ||grad L||^2 (Barrett & Dherin 2021)",
        "integrator": f"diffrax.diffeqsolve, Dopri8 with a PID step-size controller at rtol {config.flow_rtol:g}, "
                      f"atol {config.flow_atol:g}; error estimated against a second integration at 100x tighter "
                      "tolerances (the reference for the distances)",
        "distance": "Euclidean norm of the flat parameter difference at time T = n * eta",
        "slope_fit": "least squares of log distance vs log eta over the whole ladder",
        "devices": f"{jax.devices()[0].device_kind} ({jax.default_backend()})",
    }
    results.write_results(run_dir, config, "implicit_gradient_regularization", conventions, runs, headline, {
        "learning_rate": res.etas, "times": res.times, "dist_gradient_flow": res.dist_gradient_flow,
        "dist_modified_flow": res.dist_modified_flow, "gd_loss": res.gd_loss, "flow_loss": res.flow_loss,
        "modified_flow_loss": res.modified_flow_loss})
    return headline
