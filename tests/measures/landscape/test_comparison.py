"""Landscapes of two solutions (dl_course.measures.landscape.comparison): the vmapped slices equal the loss
at θ_i + α d_i with each solution's own filter-normalized direction, and the interpolation hits
both ends; dataset_metrics_fn equals the task's loss on the whole sets."""

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import measures


def test_compare_solutions_against_direct_evaluation(tiny):
    pair = jax.tree.map(lambda a, b: jnp.stack([a, b]), tiny.init(0), tiny.init(3))
    fn = lambda p: {"loss": tiny.loss(p)}  # noqa: E731
    key = jax.random.PRNGKey(5)
    alphas, betas = jnp.linspace(-1.0, 1.0, 5), jnp.linspace(-0.5, 1.5, 5)
    out = measures.compare_solutions(fn, pair, key=key, slice_alphas=alphas, interp_alphas=betas)
    assert out["slices"]["loss"].shape == (2, 5) and out["interp"]["loss"].shape == (5,)
    keys = jax.random.split(key, 2)
    for i in range(2):
        theta = jax.tree.map(lambda a: a[i], pair)
        d = measures.filter_normalized_direction(keys[i], theta)
        for j, a in enumerate(np.asarray(alphas)):
            direct = tiny.loss(jax.tree.map(lambda t, v: t + a * v, theta, d))
            np.testing.assert_allclose(out["slices"]["loss"][i, j], direct, rtol=1e-12)  # float64, same arithmetic
    a, b = (jax.tree.map(lambda x: x[i], pair) for i in (0, 1))
    np.testing.assert_allclose(out["interp"]["loss"][[1, 3]], [tiny.loss(a), tiny.loss(b)], rtol=1e-12)
    # β = 1.5 extrapolates past the second solution: θ_a + 1.5 (θ_b − θ_a).
    far = tiny.loss(jax.tree.map(lambda u, v: u + 1.5 * (v - u), a, b))
    np.testing.assert_allclose(out["interp"]["loss"][4], far, rtol=1e-12)


def test_dataset_metrics_fn_is_the_task_loss_on_both_sets():
    from dl_course.train import default_config
    from dl_course.train.build import load_data, make_model
    from dl_course.train.task import supervised_task

    with jax.enable_x64(False):
        t = default_config()
        t.dataset_options.num_train = 40
        t.model_options.width, t.model_options.depth = 5, 1
        data = load_data(t)
        task = supervised_task(make_model(t, data), t.loss, data.num_classes)
        params, state = task.init(jax.random.PRNGKey(0), jnp.asarray(data.x_train[:2]))
        got = measures.dataset_metrics_fn(task, data)(params)
        logits = np.asarray(task.apply(params, state, jnp.asarray(data.x_test)), np.float64)
        logp = (logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
                - logits.max(1, keepdims=True))
        np.testing.assert_allclose(got["test_loss"], -np.mean(logp[np.arange(len(logp)), data.y_test]), rtol=1e-5)
        np.testing.assert_allclose(got["test_accuracy"], np.mean(logits.argmax(1) == data.y_test), atol=1e-6)
        assert set(got) == {"train_loss", "train_accuracy", "test_loss", "test_accuracy"}
