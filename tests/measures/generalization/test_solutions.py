"""λmax, Hessian trace and normalized margin of every solution of a sweep in one vmapped program
(dl_course.measures.generalization.solutions), each run checked against a dense computation on its own: the
dense Hessian's top eigenvalue and trace (numpy, float64) and the margin quantile divided by the
product of spectral norms from numpy.linalg.svd."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from dl_course import measures
from dl_course.train import default_config, sweep
from dl_course.train.build import load_data, make_model
from dl_course.train.task import supervised_task


@pytest.fixture(autouse=True)
def x32():
    # The engine trains in float32; the conftest of this folder turns float64 on for every test.
    with jax.enable_x64(False):
        yield


def test_measure_solutions_matches_dense_per_run():
    t = default_config()
    t.dataset_options.num_train = 48
    t.model_options.width = 6
    t.model_options.depth = 1  # 40-6-10: 316 parameters, a dense Hessian is cheap
    t.steps, t.eval_every, t.batch_size = 20, 10, 16
    t.seeds, t.learning_rates = [0, 1], [0.05, 0.2]
    data = load_data(t)
    res = sweep(t, data=data, random_label_fraction=[0.0, 0.5])  # runs with their own labels
    m = 32
    out = measures.measure_solutions(t, data, res, seed=0, num_examples=m, lanczos_iters=40, trace_samples=200,
                                     margin_quantile=0.1)
    assert {k: v.shape for k, v in out.items()} == {k: (8,) for k in (
        "lambda_max", "lambda_max_residual", "hessian_trace", "hessian_trace_stderr", "normalized_margin",
        "output_margin")}
    task = supervised_task(make_model(t, data), t.loss, data.num_classes)
    x = np.asarray(data.x_train[:m])
    labels = res.train_labels(data, m)
    assert (labels != labels[0]).any()  # the randomized runs are measured on their own labels
    unravel = ravel_pytree(jax.tree.map(lambda a: a[0], res.params))[1]
    dense = jax.jit(jax.hessian(lambda f, y: task.loss(unravel(f), {}, {"x": jnp.asarray(x), "y": y},
                                                       jax.random.PRNGKey(0), False)[0]))
    for i in range(len(res.grid)):
        params = jax.tree.map(lambda a: a[i], res.params)
        hess = np.asarray(dense(ravel_pytree(params)[0], jnp.asarray(labels[i])), np.float64)
        eig = np.linalg.eigvalsh((hess + hess.T) / 2)
        # Lanczos (40 of 316 dimensions) on a float32 HVP: the top Ritz value lies within its
        # residual of an eigenvalue; 1e-3 relative covers float32 rounding of the dense Hessian.
        assert abs(out["lambda_max"][i] - eig[-1]) <= out["lambda_max_residual"][i] + 1e-3 * eig[-1]
        # Hutchinson, 200 Rademacher probes: within 5 standard errors of the exact trace.
        assert abs(out["hessian_trace"][i] - np.trace(hess)) <= 5 * out["hessian_trace_stderr"][i] + 1e-4
        logits = np.asarray(task.apply(params, {}, jnp.asarray(x)), np.float64)
        y = labels[i]
        correct = logits[np.arange(m), y]
        others = np.where(np.eye(10, dtype=bool)[y], -np.inf, logits).max(1)
        q = np.quantile(correct - others, 0.1)
        spectral = np.prod([np.linalg.svd(np.asarray(w, np.float64), compute_uv=False)[0]
                            for w in (params["Dense_0"]["kernel"], params["Dense_1"]["kernel"])])
        np.testing.assert_allclose(out["output_margin"][i], q, rtol=1e-4, atol=1e-5)  # float32 logits
        np.testing.assert_allclose(out["normalized_margin"][i], q / (spectral * np.linalg.norm(x) / m),
                                   rtol=1e-4, atol=1e-6)
