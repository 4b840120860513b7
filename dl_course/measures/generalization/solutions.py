"""Curvature and margin of every final solution of a sweep, in one vmapped program.

``measure_solutions(config, data, result)`` takes the engine config the sweep was trained with
(``config.train`` of a study), its data and its ``SweepResult``.

Given a ``SweepResult``, each run's final parameters are measured on the same measurement set
(the first ``num_examples`` training examples, with the run's own labels when they were
randomized in-graph), in eval mode, in the sweep's dtype:

* ``lambda_max`` — top Hessian eigenvalue of the mean training loss (Lanczos with full
  reorthogonalization, ``dl_course.measures.lambda_max``) and its Ritz residual; the sharpness of
  Keskar et al. (2017) in its curvature form and the edge-of-stability quantity of Cohen et al.
  (2021);
* ``hessian_trace`` — Hutchinson estimate (Rademacher probes) and its standard error, the
  "flatness" of e.g. Jastrzębski et al. (2017) and Jiang et al. (2020);
* ``normalized_margin`` — the ``q``-quantile (default 10%, Jiang et al. 2020) over the
  measurement set of the multiclass margin ``f_y − max_{j≠y} f_j`` divided by the product of the
  layers' spectral norms and by ``‖X‖_F / n`` (Bartlett, Foster & Telgarsky 2017, Fig. 1);
  ``output_margin`` is the same quantile without normalization.

The runs are stacked on a leading axis and measured by one ``jax.jit(jax.vmap(...))`` call —
never a Python loop over runs. Curvature is not reparametrization invariant (Dinh et al. 2017): a
ReLU network's λmax and trace change under layer rescalings that leave the function unchanged, so
compare them between runs of one architecture and initialization scale only.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.measures.curvature.trace import hessian_trace
from dl_course.measures.generalization.margins import margin_normalizer, multiclass_margins
from dl_course.measures.sharpness.directional import lambda_max
from dl_course.train.build import make_model
from dl_course.train.task import supervised_task

_PROGRAMS: dict = {}


def _program(config, data, lanczos_iters: int, trace_samples: int, margin_quantile: float):
    """The jitted, run-vmapped measurement program, cached on everything that shapes it (model,
    loss, classes, iteration counts), so sweeps of one study that differ only in their training
    (batch size, optimizer) share one compilation. The data enter as arguments, unbatched.

    Runs on the default device. (It once hung at 0% CPU when sharded over 2 CPU devices: jaxlib
    0.10.2's batched LAPACK kernels deadlock XLA:CPU's thread pool when two run concurrently;
    ``dl_course.linalg`` now computes these decompositions on the host.)
    """
    key = json.dumps([config.model, config.model_options.to_dict(), config.loss, data.num_classes,
                      list(data.input_shape), int(lanczos_iters), int(trace_samples), float(margin_quantile)],
                     sort_keys=True, default=str)
    if key in _PROGRAMS:
        return _PROGRAMS[key]
    task = supervised_task(make_model(config, data), config.loss, data.num_classes)

    def one(params, model_state, y, key, x, x_scale):
        batch = {"x": x, "y": y}
        eval_key = jax.random.PRNGKey(0)  # unused in eval mode (no dropout); the engine's convention

        def loss_fn(p):
            return task.loss(p, model_state, batch, eval_key, False)[0]

        k_lanczos, k_trace = jax.random.split(key)
        lam, res = lambda_max(loss_fn, params, key=k_lanczos, num_iters=lanczos_iters)
        tr, se = hessian_trace(loss_fn, params, key=k_trace, num_samples=trace_samples)
        logits = task.apply(params, model_state, x)
        q = jnp.quantile(multiclass_margins(logits, y), margin_quantile)
        normalizer = margin_normalizer(params, "spectral") * x_scale
        return {"lambda_max": lam, "lambda_max_residual": res, "hessian_trace": tr, "hessian_trace_stderr": se,
                "normalized_margin": q / normalizer, "output_margin": q}

    _PROGRAMS[key] = jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, None, None)))
    return _PROGRAMS[key]


def measure_solutions(config, data, result, *, seed: int = 0, num_examples: int = 1000, lanczos_iters: int = 20,
                      trace_samples: int = 20, margin_quantile: float = 0.1) -> dict[str, np.ndarray]:
    """λmax (+ residual), Hessian trace (+ stderr), normalized and raw output-margin quantiles of
    every run of ``result`` (trained with ``config`` on ``data``): dict name -> ``[run]``, from one
    ``jax.jit(jax.vmap(...))`` call over the stacked final parameters.

    The PRNG key of run ``i`` is ``fold_in(PRNGKey(seed), i)`` (Lanczos start, Hutchinson probes).
    """
    m = min(int(num_examples), data.n_train)
    x = np.asarray(data.x_train[:m])
    x_scale = np.float32(np.linalg.norm(x.reshape(m, -1)) / m)
    keys = np.asarray(jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(seed), i))(jnp.arange(len(result.grid))))
    program = _program(config, data, lanczos_iters, trace_samples, margin_quantile)
    out = program(result.params, result.state.model_state, result.train_labels(data, m), keys, x, x_scale)
    return jax.tree.map(np.asarray, jax.device_get(out))


def measurement_conventions(config, data, num_examples: int, lanczos_iters: int, trace_samples: int,
                margin_quantile: float) -> dict:
    """How the measures were taken (recorded in summary.json)."""
    m = min(int(num_examples), data.n_train)
    return {
        "measures_mode": "eval (no dropout; batch-norm running statistics)",
        "measures_examples": f"first {m} training examples (each run's own training labels)",
        "measures_loss": f"mean {config.loss} over the measurement examples",
        "lambda_max": f"Lanczos with full reorthogonalization, {lanczos_iters} Hessian-vector products; "
                      "Ritz residual recorded",
        "hessian_trace": f"Hutchinson, {trace_samples} Rademacher probes; standard error recorded",
        "normalized_margin": (f"{margin_quantile:.0%} quantile of f_y - max_(j!=y) f_j over the measurement examples, "
                              "divided by prod_l ||W_l||_2 * ||X||_F / n (Bartlett et al. 2017)"),
        "measures_dtype": config.get("dtype", "float32"),
    }
